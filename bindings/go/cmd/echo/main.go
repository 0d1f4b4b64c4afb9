// Command echo is the TCP echo server of bench/run_go.sh, written once in
// plain Go over a net.Listener: over libasync (the default) or over Go's
// own net package (-net), or on libasync's loop goroutine (-handler), so the load generator compares the two with the
// C server in one run. It prints READY when listening on 127.0.0.1:PORT and
// exits on SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"libasync"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

// echo answers on the loop's goroutine.
func echo(c *async.Conn, data []byte) int {
	if c.Send(data) != nil {
		c.Close()
	}
	return len(data)
}

func main() {
	useNet := flag.Bool("net", false, "serve with Go's net package instead of libasync")
	handler := flag.Bool("handler", false, "serve on the loop's goroutine (ListenHandler) instead of a goroutine per connection")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: echo [-net] PORT")
		os.Exit(2)
	}
	addr := "127.0.0.1:" + flag.Arg(0)
	var ln net.Listener
	var err error
	if *useNet {
		ln, err = net.Listen("tcp", addr)
	} else {
		var l *async.Loop
		if l, err = async.New(); err == nil {
			go l.Run(context.Background())
			if *handler {
				ln, err = l.ListenHandler("tcp", addr, func(*async.Conn) async.Handler { return echo })
			} else {
				ln, err = l.Listen("tcp", addr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() {
		if *handler {
			return
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	fmt.Println("READY")
	<-sig
}
