// tlsenv-go-get: the `go` preset's client, an https GET with net/http's defaults
// (http.Get: ProxyFromEnvironment, crypto/x509's system roots, SSL_CERT_FILE and the
// SSL_CERT_DIR colon list), as Go programs such as docker, kubectl and terraform make it.
//
// Usage: tlsenv-go-get [-block-after DURATION] URL
//
// Exit 0 with the body on stdout; 22 for an HTTP status >= 400; 1 with Go's error on stderr;
// 124 when crypto/x509 is still loading the system roots after DURATION (an entry that blocks
// on open, such as a FIFO in a cert dir, stops it forever; http.Get then reports only
// "net/http: TLS handshake timeout"). The roots load once per process (a sync.Once), so
// loading them beside the request changes nothing of what the request trusts.
package main

import (
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func get(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

type result struct {
	status int
	err    error
}

func main() {
	blockAfter := flag.Duration("block-after", 3*time.Second,
		"report root loading as blocked when it has not finished after this long")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: tlsenv-go-get [-block-after DURATION] URL")
		os.Exit(2)
	}
	loaded := make(chan struct{})
	go func() {
		x509.SystemCertPool() // errors show in the request's own error
		close(loaded)
	}()
	done := make(chan result, 1)
	go func() {
		status, err := get(flag.Arg(0))
		done <- result{status, err}
	}()
	watchdog := time.NewTimer(*blockAfter)
	for {
		select {
		case r := <-done:
			if r.err != nil {
				fmt.Fprintln(os.Stderr, r.err)
				os.Exit(1)
			}
			if r.status >= 400 {
				fmt.Fprintf(os.Stderr, "HTTP status %d\n", r.status)
				os.Exit(22)
			}
			os.Exit(0)
		case <-loaded:
			loaded = nil // a nil channel never fires again
		case <-watchdog.C:
			if loaded != nil {
				fmt.Fprintf(os.Stderr, "tlsenv-go-get: root loading blocked: crypto/x509 "+
					"was still reading the system roots after %s (an entry that blocks on "+
					"open, such as a FIFO)\n", *blockAfter)
				os.Exit(124)
			}
		}
	}
}
