//go:build unix

package launch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The tests start this test binary again in one of these roles, chosen by roleEnv:
// roleExec calls Exec(os.Args[1:]) for real, and the process it execs (often this
// binary again) acts as roleApp and reports what it received.
const (
	roleEnv  = "LAUNCH_TEST_ROLE"
	valueEnv = "LAUNCH_TEST_VALUE"
	roleExec = "exec"
	roleApp  = "app"
)

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case roleExec:
		runExecRole()
	case roleApp:
		runAppRole()
	}
	os.Exit(m.Run())
}

func runExecRole() {
	// Exec passes os.Environ() on, so this makes the exec'd test binary the app.
	if err := os.Setenv(roleEnv, roleApp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(98)
	}
	err := Exec(os.Args[1:], os.Stdout)
	if err == nil {
		os.Exit(0)
	}
	fmt.Fprintln(os.Stderr, err)
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		os.Exit(coded.ExitCode())
	}
	os.Exit(99)
}

// appReport is what the roleApp process prints.
type appReport struct {
	Args []string `json:"args"`
	PID  int      `json:"pid"`
	Env  string   `json:"env"`
}

func runAppRole() {
	report := appReport{Args: os.Args, PID: os.Getpid(), Env: os.Getenv(valueEnv)}
	if err := json.NewEncoder(os.Stdout).Encode(report); err != nil {
		os.Exit(97)
	}
	os.Exit(0)
}

func testBinary(t *testing.T) string {
	t.Helper()
	path, err := os.Executable()
	if err != nil {
		t.Fatalf("finding the test binary: %v", err)
	}
	return path
}

// processResult is how a child process of a test ended.
type processResult struct {
	stdout, stderr string
	exitCode       int
	pid            int
}

// childEnv is this process's environment without the variables the tests control,
// plus the given ones. GODEBUG is dropped so that execerrdot has its default.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case roleEnv, valueEnv, "PATH", "GODEBUG":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// runProcess runs path with argv (argv[0] included) and env, in dir if not empty.
func runProcess(t *testing.T, path string, argv, env []string, dir string) processResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path)
	cmd.Args = argv
	cmd.Env = env
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running %q: %v", path, err)
	}
	return processResult{
		stdout:   stdout.String(),
		stderr:   stderr.String(),
		exitCode: cmd.ProcessState.ExitCode(),
		pid:      cmd.Process.Pid,
	}
}

// runExec starts the test binary in roleExec, which calls Exec(argv), with PATH set
// to pathList and the extra environment.
func runExec(t *testing.T, argv []string, pathList, dir string, extraEnv ...string) processResult {
	t.Helper()
	self := testBinary(t)
	env := childEnv(append([]string{roleEnv + "=" + roleExec, "PATH=" + pathList}, extraEnv...)...)
	return runProcess(t, self, append([]string{self}, argv...), env, dir)
}

func decodeReport(t *testing.T, result processResult) appReport {
	t.Helper()
	if result.exitCode != 0 || result.stderr != "" {
		t.Fatalf("app exit code %d, stderr %q, stdout %q", result.exitCode, result.stderr, result.stdout)
	}
	var report appReport
	if err := json.Unmarshal([]byte(result.stdout), &report); err != nil {
		t.Fatalf("app output %q is not a report: %v", result.stdout, err)
	}
	return report
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is subject to umask
		t.Fatal(err)
	}
}

func TestExecPassesArgvByteForByteInTheSameProcess(t *testing.T) {
	self := testBinary(t)
	argv := []string{self, "a b", "", "  lead", "quote\"s", "'single'", "tab\there", "new\nline", "ünïcode", "$HOME", "*"}
	value := "spaces and\nnewline"

	result := runExec(t, argv, os.Getenv("PATH"), "", valueEnv+"="+value)
	report := decodeReport(t, result)

	if !slices.Equal(report.Args, argv) {
		t.Errorf("app got argv %q, want %q", report.Args, argv)
	}
	if report.PID != result.pid {
		t.Errorf("app ran as PID %d, want the exec'ing process's PID %d (exec, not fork)", report.PID, result.pid)
	}
	if report.Env != value {
		t.Errorf("app got %s=%q, want %q", valueEnv, report.Env, value)
	}
}

func TestExecFindsBareNameInPath(t *testing.T) {
	skipped, found := t.TempDir(), t.TempDir()
	// A non-executable file earlier in PATH is skipped, as execvp does.
	writeFile(t, filepath.Join(skipped, "launch-test-app"), "not a program\n", 0o644)
	symlink(t, testBinary(t), filepath.Join(found, "launch-test-app"))

	result := runExec(t, []string{"launch-test-app", "x"}, skipped+":"+found, "")
	report := decodeReport(t, result)

	// argv[0] is passed as given, not replaced by the resolved path.
	if want := []string{"launch-test-app", "x"}; !slices.Equal(report.Args, want) {
		t.Errorf("app got argv %q, want %q", report.Args, want)
	}
	if report.PID != result.pid {
		t.Errorf("app ran as PID %d, want %d", report.PID, result.pid)
	}
}

func TestExecRefusesMatchRelativeToWorkingDirectory(t *testing.T) {
	workDir := t.TempDir()
	symlink(t, testBinary(t), filepath.Join(workDir, "launch-test-app"))
	for _, pathList := range []string{"/nonexistent-launch-test:", ".", "relative-dir-that-is-missing:."} {
		t.Run(pathList, func(t *testing.T) {
			result := runExec(t, []string{"launch-test-app"}, pathList, workDir)
			if result.exitCode != ExitCannotExecute {
				t.Errorf("exit code %d, want %d; stderr %q", result.exitCode, ExitCannotExecute, result.stderr)
			}
			if result.stdout != "" {
				t.Errorf("the app ran anyway: %q", result.stdout)
			}
			for _, want := range []string{`refusing to run command "launch-test-app"`, "relative to the working directory", pathList} {
				if !strings.Contains(result.stderr, want) {
					t.Errorf("stderr %q does not contain %q", result.stderr, want)
				}
			}
		})
	}
}

func TestExecEchoBuiltinWhenPathHasNoEcho(t *testing.T) {
	emptyDir := t.TempDir()
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"echo", "done"}, "done\n"},
		{[]string{"echo"}, "\n"},
		{[]string{"echo", "a  b", "", "-n", "c"}, "a  b  -n c\n"},
	} {
		t.Run(strings.Join(tc.argv, "_"), func(t *testing.T) {
			result := runExec(t, tc.argv, emptyDir, "")
			if result.exitCode != 0 || result.stderr != "" {
				t.Fatalf("exit code %d, stderr %q", result.exitCode, result.stderr)
			}
			if result.stdout != tc.want {
				t.Errorf("stdout %q, want %q", result.stdout, tc.want)
			}
		})
	}
}

func TestExecPrefersRealEchoInPath(t *testing.T) {
	dir := t.TempDir()
	symlink(t, testBinary(t), filepath.Join(dir, "echo"))

	result := runExec(t, []string{"echo", "done"}, dir, "")
	report := decodeReport(t, result)

	if want := []string{"echo", "done"}; !slices.Equal(report.Args, want) {
		t.Errorf("echo program got argv %q, want %q", report.Args, want)
	}
	if report.PID != result.pid {
		t.Errorf("echo program ran as PID %d, want %d", report.PID, result.pid)
	}
}

func TestExecCommandNotFound(t *testing.T) {
	pathList := t.TempDir() + ":/nonexistent-launch-test"
	result := runExec(t, []string{"launch-no-such-command", "x"}, pathList, "")
	if result.exitCode != ExitNotFound {
		t.Errorf("exit code %d, want %d", result.exitCode, ExitNotFound)
	}
	want := fmt.Sprintf("command %q not found in PATH (%s)\n", "launch-no-such-command", pathList)
	if result.stderr != want {
		t.Errorf("stderr %q, want %q", result.stderr, want)
	}

	result = runExec(t, []string{"launch-no-such-command"}, "", "")
	if result.exitCode != ExitNotFound || !strings.Contains(result.stderr, "PATH is empty") {
		t.Errorf("empty PATH: exit code %d, stderr %q; want %d and a note that PATH is empty",
			result.exitCode, result.stderr, ExitNotFound)
	}
}

func TestExecFailures(t *testing.T) {
	dir := t.TempDir()
	plainFile := filepath.Join(dir, "plain-file")
	writeFile(t, plainFile, "not a program\n", 0o644)
	noFormat := filepath.Join(dir, "no-format")
	writeFile(t, noFormat, "executable text without a #! line\n", 0o755)
	missingInterpreter := filepath.Join(dir, "missing-interpreter")
	writeFile(t, missingInterpreter, "#!/nonexistent-launch-test/sh\n", 0o755)

	for _, tc := range []struct {
		name      string
		argv      []string
		pathList  string
		wantCode  int
		wantInErr []string
	}{
		{"non-executable in PATH", []string{"plain-file"}, dir, ExitCannotExecute,
			[]string{`"plain-file"`, plainFile, "may not execute"}},
		{"non-executable by path", []string{plainFile}, dir, ExitCannotExecute,
			[]string{plainFile, "permission denied"}},
		{"directory", []string{dir}, dir, ExitCannotExecute,
			[]string{dir, "is a directory"}},
		{"no #! line", []string{noFormat}, dir, ExitCannotExecute,
			[]string{noFormat, "exec format error"}},
		{"no #! line via PATH", []string{"no-format"}, dir, ExitCannotExecute,
			[]string{noFormat, `command "no-format"`, "exec format error"}},
		{"missing file by path", []string{filepath.Join(dir, "missing")}, dir, ExitNotFound,
			[]string{filepath.Join(dir, "missing"), "no such file"}},
		{"missing interpreter", []string{missingInterpreter}, dir, ExitNotFound,
			[]string{missingInterpreter, "interpreter"}},
		{"empty argv", nil, dir, ExitNoCommand,
			[]string{"argv is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			result := runExec(t, tc.argv, tc.pathList, "")
			if result.exitCode != tc.wantCode {
				t.Errorf("exit code %d, want %d; stderr %q", result.exitCode, tc.wantCode, result.stderr)
			}
			for _, want := range tc.wantInErr {
				if !strings.Contains(result.stderr, want) {
					t.Errorf("stderr %q does not contain %q", result.stderr, want)
				}
			}
		})
	}
}

func TestExecEmptyArgvInProcess(t *testing.T) {
	err := Exec(nil, &bytes.Buffer{})
	var launchErr *Error
	if !errors.As(err, &launchErr) {
		t.Fatalf("Exec(nil) = %v, want an *Error", err)
	}
	if launchErr.ExitCode() != ExitNoCommand || !errors.Is(err, ErrNoCommand) {
		t.Errorf("Exec(nil): exit code %d, error %v; want %d and ErrNoCommand", launchErr.ExitCode(), err, ExitNoCommand)
	}
}
