//go:build !unix

package remotewrite

// stillOpen cannot peek on this platform: a connection the server closed
// fails its next request before any answer, which h1 sends again on a new
// connection.
func (c *h1Conn) stillOpen() bool { return true }
