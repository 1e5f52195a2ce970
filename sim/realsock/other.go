//go:build !linux

package realsock

import (
	"context"

	"github.com/portsim/portsim/scenarios"
)

// ServeChild does nothing outside Linux.
func ServeChild() {}

// Run returns ErrNeedsLinux.
func Run(context.Context, *scenarios.Scenario, Options) (*Report, *scenarios.Scenario, error) {
	return nil, nil, ErrNeedsLinux
}

// RunBindMatrix returns ErrNeedsLinux.
func RunBindMatrix(context.Context) ([]MatrixRow, error) { return nil, ErrNeedsLinux }
