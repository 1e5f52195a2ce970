//go:build !linux

package realsock

// BindMatrix runs the bind-conflict matrix on the running kernel's real
// sockets and compares it with the model. It needs Linux (the real-socket
// side uses Linux socket options, sock_diag and network namespaces); here
// it returns ErrNeedsLinux.
func BindMatrix() ([]MatrixRow, error) { return nil, ErrNeedsLinux }
