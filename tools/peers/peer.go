// The peers' side of tools/bench-instr.sh: the same figures as
// tools/sched_bench.c, in goroutines.  usage: go-peer --size N figure
// (run with GOMAXPROCS=1, as bench-instr.sh does).
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
)

const ringSize = 503

func main() {
	if len(os.Args) != 4 || os.Args[1] != "--size" {
		fmt.Fprintln(os.Stderr, "usage: go-peer --size N yield|spawn|ring|pingpong")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil || n <= 0 {
		fmt.Fprintln(os.Stderr, "go-peer: --size takes a positive count")
		os.Exit(2)
	}
	switch os.Args[3] {
	case "yield":
		done := make(chan bool)
		for t := 0; t < 2; t++ {
			go func() {
				for i := 0; i < n; i++ {
					runtime.Gosched()
				}
				done <- true
			}()
		}
		<-done
		<-done
	case "spawn":
		for i := 1; i <= n; i++ {
			go func() {}()
			if i%1000 == 0 {
				runtime.Gosched()
			}
		}
	case "ring":
		boxes := make([]chan int, ringSize)
		for i := range boxes {
			boxes[i] = make(chan int)
		}
		done := make(chan bool)
		for i := 0; i < ringSize; i++ {
			go func(from, to chan int) {
				for {
					v := <-from
					if v == 0 {
						done <- true
						return
					}
					to <- v - 1
				}
			}(boxes[i], boxes[(i+1)%ringSize])
		}
		boxes[0] <- n
		<-done
	case "pingpong":
		ping, pong := make(chan int), make(chan int)
		go func() {
			for i := 0; i < n; i++ {
				pong <- <-ping
			}
		}()
		for i := 0; i < n; i++ {
			ping <- i
			<-pong
		}
	default:
		fmt.Fprintln(os.Stderr, "go-peer: no figure", os.Args[3])
		os.Exit(2)
	}
}
