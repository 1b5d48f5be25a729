// The echo server of examples/echo.c in Go: a goroutine per connection.
// go run echo.go PORT
package main

import (
	"fmt"
	"net"
	"os"
)

func handle(c net.Conn) {
	defer c.Close()
	c.(*net.TCPConn).SetNoDelay(true)
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("echo: serving on %s (go)\n", l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go handle(c)
	}
}
