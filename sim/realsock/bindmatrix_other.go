//go:build !linux

package realsock

import "errors"

// BindMatrix runs the bind-conflict matrix on the running kernel's real
// sockets and compares it with the model. It needs Linux (the real-socket
// side uses Linux socket options, sock_diag and network namespaces); here
// it returns an error.
func BindMatrix() ([]MatrixRow, error) {
	return nil, errors.New("the bind-conflict matrix needs Linux")
}
