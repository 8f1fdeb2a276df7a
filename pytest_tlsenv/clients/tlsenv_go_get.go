// tlsenv-go-get: the `go` preset's client, an https GET with net/http's defaults
// (http.Get: ProxyFromEnvironment, crypto/x509's system roots, SSL_CERT_FILE and the
// SSL_CERT_DIR colon list), as Go programs such as docker, kubectl and terraform make it.
//
// Usage: tlsenv-go-get [-block-after DURATION] URL
//
// Exit 0 with the body on stdout; 22 for an HTTP status >= 400; 1 with Go's error on stderr;
// 124 when crypto/x509 is still loading the system roots after DURATION and one of this
// process's threads is blocked opening a file (an entry that blocks on open, such as a FIFO in
// a cert dir, stops it forever; http.Get then reports only "net/http: TLS handshake
// timeout"). Loading that is merely slow (a large store on a loaded machine) is waited for:
// the caller's timeout, not this watchdog, bounds it. Where /proc tells nothing about the
// threads, loading still unfinished after DURATION is reported as blocked. The roots load
// once per process (a sync.Once), so loading them beside the request changes nothing of what
// the request trusts.
package main

import (
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

// recheck is how often the watchdog looks again at loading that is slow but not blocked.
const recheck = 200 * time.Millisecond

// blockedInOpen reports whether a thread of this process waits in open(2): for a FIFO's
// other end (the kernel's wait_for_partner), or, where the wait channel is hidden, inside
// openat. known is false when /proc says nothing about any thread.
func blockedInOpen() (blocked, known bool) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return false, false
	}
	openat := fmt.Sprint(syscall.SYS_OPENAT)
	for _, task := range tasks {
		dir := "/proc/self/task/" + task.Name() + "/"
		if w, err := os.ReadFile(dir + "wchan"); err == nil {
			switch wchan := strings.TrimSpace(string(w)); wchan {
			case "wait_for_partner":
				return true, true
			case "", "0":
			default:
				known = true
				continue
			}
		}
		if s, err := os.ReadFile(dir + "syscall"); err == nil {
			known = true
			if f := strings.Fields(string(s)); len(f) > 0 && f[0] == openat {
				return true, true
			}
		}
	}
	return false, known
}

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
	suspect := false // blocked in open at the previous look too: not a passing open
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
			if loaded == nil {
				continue
			}
			blocked, known := blockedInOpen()
			if !known || (blocked && suspect) {
				how := "a thread blocked in open(2)"
				if !known {
					how = "/proc shows none of its threads"
				}
				fmt.Fprintf(os.Stderr, "tlsenv-go-get: root loading blocked: crypto/x509 "+
					"was still reading the system roots after %s, %s (an entry that blocks "+
					"on open, such as a FIFO)\n", *blockAfter, how)
				os.Exit(124)
			}
			suspect = blocked
			watchdog.Reset(recheck)
		}
	}
}
