package realsock

// childEnv is the environment variable that makes a process started by
// Run a realsock child; its value is the JSON childSpec.
const childEnv = "PORTSIM_REALSOCK_CHILD"

// childSpec tells a child what to run: one host of a scenario, loaded as
// the parent loaded it (built-in name or path, and the --set overrides), or
// the bind-conflict matrix.
type childSpec struct {
	Scenario  string   `json:"scenario"`
	Overrides []string `json:"overrides"`
	Host      int      `json:"host"`
	Matrix    bool     `json:"matrix"`
	// ParentNetNS is the inode of the parent's network namespace: the
	// child writes no sysctl unless its own namespace differs.
	ParentNetNS uint64 `json:"parent_netns"`
}

// childReply is what a child writes to its standard output.
type childReply struct {
	Report *Report     `json:"report,omitempty"`
	Matrix []MatrixRow `json:"matrix,omitempty"`
	Err    string      `json:"error,omitempty"`
}
