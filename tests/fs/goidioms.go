// goidioms: Go's usual file idioms on a znodefs mount, each result checked at once in the same
// process (read-your-writes). Go 1.19, standard library only; build offline:
//
//	GO111MODULE=off GOCACHE=$tmp GOPATH=$tmp go build -o $tmp/goidioms tests/fs/goidioms.go
//	goidioms DIR
//
// DIR is an empty directory on the mount. On success it prints "go-idioms: N checks, 0 failures"
// and then a manifest of every file left under DIR, one "SHA256  ./PATH" line each (sha256sum's
// format), sorted by path bytewise (LC_ALL=C sort), for a test to compare with the same tree read
// on a second mount. On the first mismatch it prints what differed and exits 1.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

var checks int

func fail(format string, args ...interface{}) {
	fmt.Printf("go-idioms: check %d failed: %s\n", checks+1, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func must(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

// readIs: PATH reads WANT right now (os.ReadFile) and os.Stat gives its length.
func readIs(path string, want []byte) {
	got, err := os.ReadFile(path)
	must(err, "ReadFile "+path)
	if !bytes.Equal(got, want) {
		fail("%s reads %d bytes %q..., want %d bytes %q...", path, len(got), head(got), len(want), head(want))
	}
	sizeIs(path, int64(len(want)))
	checks++
}

func sizeIs(path string, want int64) {
	st, err := os.Stat(path)
	must(err, "Stat "+path)
	if st.Size() != want {
		fail("Stat %s: size %d, want %d", path, st.Size(), want)
	}
}

func gone(path string) {
	_, err := os.Stat(path)
	if !errors.Is(err, fs.ErrNotExist) {
		fail("Stat %s after removal: %v, want ErrNotExist", path, err)
	}
	checks++
}

func head(b []byte) []byte {
	if len(b) > 24 {
		return b[:24]
	}
	return b
}

// pattern: N deterministic bytes that are not all alike (a shifted block would show).
func pattern(n int) []byte {
	out := make([]byte, 0, n+32)
	sum := sha256.Sum256([]byte("goidioms"))
	for len(out) < n {
		out = append(out, sum[:]...)
		sum = sha256.Sum256(sum[:])
	}
	return out[:n]
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: goidioms DIR (an empty directory on the mount)")
		os.Exit(2)
	}
	d := os.Args[1]
	p := func(parts ...string) string { return filepath.Join(append([]string{d}, parts...)...) }

	// os.WriteFile / os.ReadFile, then a rewrite shorter than before (O_TRUNC).
	must(os.WriteFile(p("config.txt"), []byte("name = znodefs\nreplicas = 3\n"), 0o644), "WriteFile config.txt")
	readIs(p("config.txt"), []byte("name = znodefs\nreplicas = 3\n"))
	must(os.WriteFile(p("config.txt"), []byte("replicas = 2\n"), 0o644), "rewrite config.txt")
	readIs(p("config.txt"), []byte("replicas = 2\n"))

	// Atomic save: os.CreateTemp in the same directory, Write, Sync, Close, os.Rename over the
	// existing target; the new content at once under the target's name, the temp name gone.
	must(os.WriteFile(p("state.json"), []byte(`{"version": 1}`), 0o644), "WriteFile state.json")
	for v := 2; v <= 4; v++ {
		tmp, err := os.CreateTemp(d, ".state.json.tmp*")
		must(err, "CreateTemp")
		content := []byte(fmt.Sprintf(`{"version": %d}`, v))
		_, err = tmp.Write(content)
		must(err, "Write "+tmp.Name())
		must(tmp.Sync(), "Sync "+tmp.Name())
		must(tmp.Close(), "Close "+tmp.Name())
		must(os.Rename(tmp.Name(), p("state.json")), "Rename "+tmp.Name()+" over state.json")
		readIs(p("state.json"), content)
		gone(tmp.Name())
	}

	// os.MkdirAll of nested directories, twice (the second finds them all and succeeds).
	for i := 0; i < 2; i++ {
		must(os.MkdirAll(p("a", "b", "c"), 0o755), "MkdirAll a/b/c")
		st, err := os.Stat(p("a", "b", "c"))
		must(err, "Stat a/b/c")
		if !st.IsDir() {
			fail("a/b/c is not a directory: %v", st.Mode())
		}
		checks++
	}

	// O_APPEND|O_CREATE|O_WRONLY: a log opened, written and closed per line.
	logPath := p("a", "app.log")
	var want []byte
	for i := 0; i < 5; i++ {
		f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		must(err, "OpenFile O_APPEND "+logPath)
		line := []byte(fmt.Sprintf("line %d\n", i))
		_, err = f.Write(line)
		must(err, "append")
		must(f.Close(), "Close after append")
		want = append(want, line...)
		readIs(logPath, want)
	}

	// O_CREATE|O_EXCL on an existing file: fs.ErrExist, the file untouched.
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err == nil {
		f.Close()
		fail("O_CREATE|O_EXCL of the existing %s succeeded", logPath)
	}
	if !errors.Is(err, fs.ErrExist) {
		fail("O_CREATE|O_EXCL of the existing %s: %v, want fs.ErrExist", logPath, err)
	}
	checks++
	readIs(logPath, want)
	// ... and on a new name it creates.
	f, err = os.OpenFile(p("a", "lock"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	must(err, "O_CREATE|O_EXCL of a new name")
	must(f.Close(), "Close lock")
	readIs(p("a", "lock"), nil)

	// os.Truncate shorter, then longer (zeros), and (*File).Truncate to empty.
	must(os.WriteFile(p("trunc"), []byte("0123456789"), 0o644), "WriteFile trunc")
	must(os.Truncate(p("trunc"), 4), "Truncate 4")
	readIs(p("trunc"), []byte("0123"))
	must(os.Truncate(p("trunc"), 8), "Truncate 8")
	readIs(p("trunc"), []byte("0123\x00\x00\x00\x00"))
	f, err = os.OpenFile(p("trunc"), os.O_RDWR, 0)
	must(err, "OpenFile trunc O_RDWR")
	must(f.Truncate(0), "(*File).Truncate 0")
	_, err = f.WriteAt([]byte("xy"), 0)
	must(err, "WriteAt")
	must(f.Close(), "Close trunc")
	readIs(p("trunc"), []byte("xy"))

	// io.Copy from one file to another (300 KB, deterministic bytes).
	blob := pattern(300000)
	must(os.WriteFile(p("a", "b", "blob"), blob, 0o644), "WriteFile blob")
	src, err := os.Open(p("a", "b", "blob"))
	must(err, "Open blob")
	dst, err := os.Create(p("a", "b", "c", "blob.copy"))
	must(err, "Create blob.copy")
	n, err := io.Copy(dst, src)
	must(err, "io.Copy")
	if n != int64(len(blob)) {
		fail("io.Copy copied %d bytes, want %d", n, len(blob))
	}
	must(dst.Close(), "Close blob.copy")
	must(src.Close(), "Close blob")
	readIs(p("a", "b", "c", "blob.copy"), blob)

	// bufio: lines written through a bufio.Writer, read back with a bufio.Scanner.
	f, err = os.Create(p("a", "b", "lines.txt"))
	must(err, "Create lines.txt")
	w := bufio.NewWriter(f)
	var wantLines []string
	for i := 0; i < 2000; i++ {
		line := fmt.Sprintf("%04d %s", i, strings.Repeat("z", i%50))
		wantLines = append(wantLines, line)
		_, err = fmt.Fprintln(w, line)
		must(err, "bufio write")
	}
	must(w.Flush(), "bufio Flush")
	must(f.Close(), "Close lines.txt")
	f, err = os.Open(p("a", "b", "lines.txt"))
	must(err, "Open lines.txt")
	sc := bufio.NewScanner(f)
	i := 0
	for sc.Scan() {
		if i >= len(wantLines) || sc.Text() != wantLines[i] {
			fail("lines.txt line %d reads %q", i, sc.Text())
		}
		i++
	}
	must(sc.Err(), "Scanner")
	f.Close()
	if i != len(wantLines) {
		fail("lines.txt has %d lines, want %d", i, len(wantLines))
	}
	checks++

	// os.Remove of a file, os.RemoveAll of a tree (and of nothing: no error).
	must(os.WriteFile(p("scratch"), []byte("x"), 0o644), "WriteFile scratch")
	must(os.Remove(p("scratch")), "Remove scratch")
	gone(p("scratch"))
	must(os.MkdirAll(p("tmpdir", "x", "y"), 0o755), "MkdirAll tmpdir/x/y")
	for _, name := range []string{"tmpdir/one", "tmpdir/x/two", "tmpdir/x/y/three"} {
		must(os.WriteFile(p(name), []byte(name), 0o644), "WriteFile "+name)
	}
	must(os.RemoveAll(p("tmpdir")), "RemoveAll tmpdir")
	gone(p("tmpdir"))
	must(os.RemoveAll(p("tmpdir")), "RemoveAll of a missing path")
	checks++

	// os.ReadDir: sorted names, directories told apart.
	entries, err := os.ReadDir(d)
	must(err, "ReadDir")
	var names []string
	for _, e := range entries {
		kind := "f"
		if e.IsDir() {
			kind = "d"
		}
		names = append(names, kind+":"+e.Name())
	}
	if got, exp := strings.Join(names, " "), "d:a f:config.txt f:state.json f:trunc"; got != exp {
		fail("ReadDir %s: %s, want %s", d, got, exp)
	}
	checks++

	// filepath.WalkDir over the tree: every path, in lexical order, and the manifest.
	var walked []string
	sums := map[string]string{}
	err = filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(d, path)
		if err != nil {
			return err
		}
		walked = append(walked, rel)
		if e.Type().IsRegular() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sums[rel] = fmt.Sprintf("%x", sha256.Sum256(data))
		}
		return nil
	})
	must(err, "WalkDir")
	wantWalk := ". a a/app.log a/b a/b/blob a/b/c a/b/c/blob.copy a/b/lines.txt a/lock config.txt state.json trunc"
	if got := strings.Join(walked, " "); got != wantWalk {
		fail("WalkDir: %s, want %s", got, wantWalk)
	}
	checks++

	fmt.Printf("go-idioms: %d checks, 0 failures\n", checks)
	var files []string
	for rel := range sums {
		files = append(files, rel)
	}
	sort.Strings(files)
	for _, rel := range files {
		fmt.Printf("%s  ./%s\n", sums[rel], rel)
	}
}
