// The peers' side of tools/bench-instr.sh and tools/threads.sh: the same
// figures as tools/sched_bench.c and tools/threads.c, in goroutines.
// usage: go-peer --size N figure (run with GOMAXPROCS=1, as both scripts do).
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
)

const ringSize = 503

func main() {
	if len(os.Args) != 4 || os.Args[1] != "--size" {
		fmt.Fprintln(os.Stderr, "usage: go-peer --size N yield|spawn|ring|pingpong|blocked|spawnall")
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
	case "blocked": // tools/threads.c's: each waits at a gate, then all report
		gates := make([]chan int, n)
		done := make(chan bool, 1) // an MVar: a full one blocks the putter
		for i := range gates {
			gates[i] = make(chan int, 1)
			go func(g chan int) {
				<-g
				done <- true
			}(gates[i])
		}
		runtime.Gosched()
		for _, g := range gates {
			g <- 1
		}
		for i := 0; i < n; i++ {
			<-done
		}
	case "spawnall": // tools/threads.c's spawn: the first waits for the last
		left := int64(n)
		done := make(chan bool, 1)
		for i := 0; i < n; i++ {
			go func() {
				if atomic.AddInt64(&left, -1) == 0 {
					done <- true
				}
			}()
		}
		<-done
	default:
		fmt.Fprintln(os.Stderr, "go-peer: no figure", os.Args[3])
		os.Exit(2)
	}
}
