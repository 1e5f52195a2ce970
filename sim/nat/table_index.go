package nat

// index maps packed uint64 keys to int32 values (mapping records, flows):
// open addressing with linear probing and backward-shift deletion, so
// that steady churn (a key in and out per flow) leaves no tombstones and
// costs one hash and a probe or two per operation, with no allocation
// once grown. A Go map did the same at three times the cost here (its
// deletions leave tombstones that lengthen later probes). Values must be
// >= 0; -1 marks an empty slot.
type index struct {
	e    []entry
	mask uint64
	n    int
}

// entry is one slot: key and value side by side, one cache line fetch.
type entry struct {
	key uint64
	val int32
}

// get returns key's value, or -1.
func (t *index) get(key uint64) int32 {
	if t.n == 0 {
		return -1
	}
	for i := mix64(key) & t.mask; ; i = (i + 1) & t.mask {
		if e := &t.e[i]; e.val < 0 || e.key == key {
			return e.val
		}
	}
}

// put sets key's value to v (>= 0).
func (t *index) put(key uint64, v int32) {
	if 2*(t.n+1) > len(t.e) {
		t.grow()
	}
	i := mix64(key) & t.mask
	for ; t.e[i].val >= 0; i = (i + 1) & t.mask {
		if t.e[i].key == key {
			t.e[i].val = v
			return
		}
	}
	t.e[i] = entry{key, v}
	t.n++
}

// del removes key, if present, shifting the entries of its probe run back
// into the hole.
func (t *index) del(key uint64) {
	if t.n == 0 {
		return
	}
	i := mix64(key) & t.mask
	for ; t.e[i].key != key || t.e[i].val < 0; i = (i + 1) & t.mask {
		if t.e[i].val < 0 {
			return
		}
	}
	t.n--
	for j := i; ; {
		t.e[i].val = -1
		for {
			j = (j + 1) & t.mask
			if t.e[j].val < 0 {
				return
			}
			// The entry at j may move to the hole at i unless its home
			// slot lies cyclically in (i, j].
			if h := mix64(t.e[j].key) & t.mask; (j-h)&t.mask >= (j-i)&t.mask {
				break
			}
		}
		t.e[i] = t.e[j]
		i = j
	}
}

// len returns the number of keys.
func (t *index) len() int { return t.n }

// grow doubles the table (at least 64 slots) and reinserts every entry.
func (t *index) grow() {
	old := t.e
	size := max(64, 2*len(old))
	t.e, t.mask, t.n = make([]entry, size), uint64(size-1), 0
	for i := range t.e {
		t.e[i].val = -1
	}
	for _, e := range old {
		if e.val >= 0 {
			t.put(e.key, e.val)
		}
	}
}
