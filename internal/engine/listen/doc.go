// Package listen is the accept loop every wire-protocol engine shares: it
// runs each client connection in its own goroutine, keeps a panic inside
// the connection that raised it, tracks live sessions, and drains them on
// shutdown (new clients refused at once, open sessions given until the
// deadline to end, then cut with a reason the client sees).
//
// Engines differ in what a session does, not in how sessions live and die,
// so the lifecycle lives here once.
package listen
