//go:build unix

package remotewrite

import "syscall"

// stillOpen reports whether the server has not closed the idle connection:
// a non-blocking peek finds nothing to read. On plain HTTP anything to read
// is an unsolicited answer (such as a 408 before a close), so the connection
// is not used again; on TLS it may be a session ticket the TLS layer reads
// with the next response, so only an end of stream counts.
func (c *h1Conn) stillOpen() bool {
	rc, err := c.tcp.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	var perr error
	var one [1]byte
	err = rc.Control(func(fd uintptr) {
		n, _, perr = syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	switch {
	case err != nil:
		return false
	case perr == syscall.EAGAIN || perr == syscall.EWOULDBLOCK:
		return true // nothing to read: open
	case perr != nil || n == 0:
		return false // reset or end of stream
	default:
		return c.tls
	}
}
