package emailtest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// Where Debian's dovecot-core installs the server and its admin tool.
const (
	dovecotBinary = "/usr/sbin/dovecot"
	doveadmBinary = "/usr/bin/doveadm"
)

// Dovecot is a real Dovecot IMAP server (Debian's dovecot-imapd) started
// for one test by StartDovecot: its own configuration, one user with a
// Maildir, and two listeners on the loopback interface. Nothing of it is
// shared with the system's Dovecot or with another test's.
type Dovecot struct {
	// Host is the address both listeners are on: "127.0.0.1". The
	// certificate is valid for it and for "localhost".
	Host string
	// Port is the IMAP port without TLS (tls: none). Logging in without
	// TLS is allowed (disable_plaintext_auth = no), and the server also
	// offers STARTTLS on it (tls: starttls).
	Port int
	// TLSPort is the IMAP port with implicit TLS (tls: implicit, "imaps").
	TLSPort int
	// User and Password log in as the one user, by LOGIN or AUTHENTICATE
	// PLAIN. The user's INBOX is empty at the start.
	User, Password string
	// CertPool holds the self-signed certificate that both TLS modes
	// present (made for this test with crypto/x509), so that a client
	// verifies it as it would a real one.
	CertPool *x509.CertPool
	// Dir is the instance's directory: dovecot.conf, dovecot.log, the
	// Maildir under mail/, the sockets under run/. It is removed when the
	// test ends.
	Dir string
	// StartTime is how long StartDovecot took, from writing the config
	// to a served greeting on both ports.
	StartTime time.Duration

	t      testing.TB
	cmd    *exec.Cmd
	exited chan struct{} // closed when the master process has exited
	waited error         // the master's exit status, set before exited is closed
}

// StartDovecot starts a Dovecot for t and stops it when t ends (every
// process of it gone: the test fails if one is left). The test fails at
// once, saying how to get it, when Dovecot is not installed: the email
// channel is tested against it in CI (scripts/test-deps.sh installs it).
// When t fails, Dovecot's log is printed.
//
// Dovecot runs its processes as the users it is configured with: as root,
// auth and the mail processes run as the "dovecot" user and the login
// processes as "dovenull" (Debian creates both), which is why the
// directory is searchable by others (0711) while its parent from
// os.MkdirTemp is not shared; as another user, every process runs as
// that user.
func StartDovecot(t testing.TB) *Dovecot {
	t.Helper()
	if _, err := os.Stat(dovecotBinary); err != nil {
		t.Fatalf("Dovecot is missing (%v): install dovecot-imapd (scripts/test-deps.sh does it)", err)
	}
	begin := time.Now()
	d := &Dovecot{
		Host:     "127.0.0.1",
		User:     "support@example.com",
		Password: rand.Text(),
		t:        t,
	}
	d.makeDir()
	d.CertPool = d.writeCert()
	d.writeUsers()

	// A free port can be taken by another process between the moment it
	// is found and Dovecot's bind: then start again on other ports.
	for attempt := 1; ; attempt++ {
		err := d.start()
		if err == nil {
			break
		}
		if !errors.Is(err, errDovecotPortTaken) || attempt == 3 {
			t.Fatalf("starting Dovecot: %v\n%s", err, d.Log())
		}
	}
	d.StartTime = time.Since(begin)
	t.Cleanup(d.stop)
	return d
}

// Addr is the host:port of the IMAP listener without TLS.
func (d *Dovecot) Addr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }

// TLSAddr is the host:port of the IMAP listener with implicit TLS.
func (d *Dovecot) TLSAddr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.TLSPort)) }

// TLSConfig is a client configuration that trusts the instance's
// certificate (and no other) for Host.
func (d *Dovecot) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: d.CertPool, ServerName: d.Host}
}

// Log returns the instance's log so far (dovecot.log in Dir).
func (d *Dovecot) Log() string {
	b, err := os.ReadFile(filepath.Join(d.Dir, "dovecot.log"))
	if err != nil {
		return fmt.Sprintf("(no Dovecot log: %v)", err)
	}
	return string(b)
}

// Dial returns a client logged in as User over the port without TLS,
// closed when the test ends. The test fails if that does not work.
func (d *Dovecot) Dial() *imapclient.Client {
	d.t.Helper()
	c, err := d.login()
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { c.Close() })
	return c
}

func (d *Dovecot) login() (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(d.Addr(), nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", d.Addr(), err)
	}
	if err := c.Login(d.User, d.Password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("LOGIN %s: %w", d.User, err)
	}
	return c, nil
}

// Deliver puts each raw message (RFC 5322, CRLF line ends) into the
// INBOX as new mail (not \Seen, received now), in order over one
// connection, and returns their UIDs.
func (d *Dovecot) Deliver(raws ...[]byte) []imap.UID {
	d.t.Helper()
	return d.Append("INBOX", time.Time{}, raws...)
}

// Append puts each raw message into folder with the internal date
// received (now when zero; the date import_since compares) by IMAP
// APPEND (RFC 3501 section 6.3.11), in order over one connection, and
// returns their UIDs (APPENDUID, RFC 4315). The folder must exist
// (Create makes one).
func (d *Dovecot) Append(folder string, received time.Time, raws ...[]byte) []imap.UID {
	d.t.Helper()
	c, err := d.login()
	if err != nil {
		d.t.Fatal(err)
	}
	defer c.Close()
	uids := make([]imap.UID, 0, len(raws))
	for i, raw := range raws {
		cmd := c.Append(folder, int64(len(raw)), &imap.AppendOptions{Time: received})
		_, err := cmd.Write(raw)
		if err == nil {
			err = cmd.Close()
		}
		var data *imap.AppendData
		if err == nil {
			data, err = cmd.Wait()
		}
		if err != nil {
			d.t.Fatalf("APPEND of message %d to %s: %v", i, folder, err)
		}
		uids = append(uids, data.UID)
	}
	if err := c.Logout().Wait(); err != nil {
		d.t.Fatalf("LOGOUT: %v", err)
	}
	return uids
}

// Create makes a folder (a mailbox besides INBOX).
func (d *Dovecot) Create(folder string) {
	d.t.Helper()
	c := d.Dial()
	defer c.Close()
	if err := c.Create(folder, nil).Wait(); err != nil {
		d.t.Fatalf("CREATE %s: %v", folder, err)
	}
}

// ChangeUIDValidity gives folder a new, higher UIDVALIDITY and returns
// it, keeping its messages (with their UIDs): what a client sees after
// the server's index was rebuilt or the mailbox migrated (RFC 3501
// section 2.3.1.1), so every UID it holds for the folder is void. It
// uses `doveadm mailbox update --uid-validity`. Dovecot ends the IMAP
// sessions that have the folder selected, as a real server may.
func (d *Dovecot) ChangeUIDValidity(folder string) uint32 {
	d.t.Helper()
	c := d.Dial()
	status, err := c.Status(folder, &imap.StatusOptions{UIDValidity: true}).Wait()
	c.Close()
	if err != nil {
		d.t.Fatalf("STATUS %s: %v", folder, err)
	}
	next := status.UIDValidity + 1
	out, err := exec.Command(doveadmBinary, "-c", d.configPath(), "mailbox", "update",
		"-u", d.User, "--uid-validity", strconv.FormatUint(uint64(next), 10), folder).CombinedOutput()
	if err != nil {
		d.t.Fatalf("doveadm mailbox update --uid-validity %d %s: %v\n%s", next, folder, err, out)
	}
	return next
}

// errDovecotPortTaken says that Dovecot could not bind one of its ports.
var errDovecotPortTaken = errors.New("a port was taken")

// makeDir creates Dir: its own directory under os.TempDir, because the
// Dovecot processes that run as other users must search every directory
// above their files, and a t.TempDir is private (0700) to the test's
// user.
func (d *Dovecot) makeDir() {
	dir, err := os.MkdirTemp("", "dovecot-")
	if err != nil {
		d.t.Fatalf("Dovecot directory: %v", err)
	}
	d.t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			d.t.Errorf("removing the Dovecot directory: %v", err)
		}
	})
	d.Dir = dir
	// Searchable, not listable: the users' passwords are in there.
	if err := os.Chmod(dir, 0o711); err != nil {
		d.t.Fatalf("Dovecot directory: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "state"), 0o755); err != nil {
		d.t.Fatalf("Dovecot directory: %v", err)
	}
}

// dovecotUsers says which system users the instance's processes run as.
type dovecotUsers struct {
	root     bool   // the test runs as root: Dovecot switches users
	internal string // auth and other internal processes; "" means Dovecot's default ("dovecot")
	login    string // imap-login; "" means Dovecot's default ("dovenull")
	mailUID  string // mail processes and the owner of the Maildir
	mailGID  string
}

func (d *Dovecot) users() dovecotUsers {
	name := "dovecot"
	root := os.Getuid() == 0
	if !root {
		me, err := user.Current()
		if err != nil {
			d.t.Fatalf("Dovecot users: %v", err)
		}
		name = me.Username
	}
	u, err := user.Lookup(name)
	if err != nil {
		d.t.Fatalf("Dovecot runs its mail processes as %q: %v (install dovecot-imapd: scripts/test-deps.sh does it)", name, err)
	}
	if root {
		return dovecotUsers{root: true, mailUID: u.Uid, mailGID: u.Gid}
	}
	return dovecotUsers{internal: name, login: name, mailUID: u.Uid, mailGID: u.Gid}
}

// writeUsers writes the passwd-file of the one user (its passdb and its
// userdb) and makes its home, which holds the Maildir.
func (d *Dovecot) writeUsers() {
	u := d.users()
	home := filepath.Join(d.Dir, "mail", d.User)
	if err := os.MkdirAll(home, 0o700); err != nil {
		d.t.Fatalf("Dovecot home: %v", err)
	}
	if u.root {
		uid, _ := strconv.Atoi(u.mailUID)
		gid, _ := strconv.Atoi(u.mailGID)
		for _, p := range []string{filepath.Join(d.Dir, "mail"), home} {
			if err := os.Chown(p, uid, gid); err != nil {
				d.t.Fatalf("Dovecot home: %v", err)
			}
		}
	}
	// passwd-file: user:password:uid:gid:gecos:home:shell:extra
	line := fmt.Sprintf("%s:{PLAIN}%s:%s:%s::%s::\n", d.User, d.Password, u.mailUID, u.mailGID, home)
	if err := os.WriteFile(filepath.Join(d.Dir, "passwd"), []byte(line), 0o644); err != nil {
		d.t.Fatalf("Dovecot passwd: %v", err)
	}
}

// writeCert makes a self-signed certificate for Host and localhost,
// writes it and its key where the config points, and returns a pool that
// trusts it. Only Dovecot's config process reads the key, as the user
// that started it.
func (d *Dovecot) writeCert() *x509.CertPool {
	cert := selfSigned(d.t)
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		d.t.Fatalf("TLS key: %v", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(filepath.Join(d.Dir, "cert.pem"), certPEM, 0o644); err != nil {
		d.t.Fatalf("TLS certificate: %v", err)
	}
	if err := os.WriteFile(filepath.Join(d.Dir, "key.pem"), keyPEM, 0o600); err != nil {
		d.t.Fatalf("TLS key: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return pool
}

func (d *Dovecot) configPath() string { return filepath.Join(d.Dir, "dovecot.conf") }

// dovecotConfig is the instance's dovecot.conf (Dovecot 2.3 syntax).
// Everything lives in the instance's directory (no syslog, no /run, no
// /var/lib), only IMAP runs, and nothing listens beyond the two loopback
// ports.
const dovecotConfig = `# Written by emailtest.StartDovecot for one test.
base_dir = {{dir}}/run
state_dir = {{dir}}/state
instance_name = {{instance}}
log_path = {{dir}}/dovecot.log
auth_verbose = yes
protocols = imap
listen = {{host}}
{{users}}
# tls: none is allowed on the plain port (Dovecot counts a connection from
# the loopback interface as secured anyway); STARTTLS is offered there too.
ssl = yes
ssl_cert = <{{dir}}/cert.pem
ssl_key = <{{dir}}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
# A refused login answers at once (the default waits 2 s).
auth_failure_delay = 0
mail_location = maildir:~/Maildir
# Tests do not survive power loss: no fsync, less time on a shared disk.
mail_fsync = never
first_valid_uid = {{uid}}
last_valid_uid = {{uid}}
first_valid_gid = {{gid}}
last_valid_gid = {{gid}}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {{dir}}/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u {{dir}}/passwd
}
# No chroot: an unprivileged master cannot, and a test gains nothing.
service anvil {
  chroot =
}
service imap-login {
  chroot =
  inet_listener imap {
    port = {{port}}
  }
  inet_listener imaps {
    port = {{tlsport}}
    ssl = yes
  }
}
`

// writeConfig writes dovecot.conf for the ports in d.
func (d *Dovecot) writeConfig() {
	u := d.users()
	var users string
	if !u.root {
		// Unprivileged: every process runs as the test's user.
		users = fmt.Sprintf("default_internal_user = %s\ndefault_internal_group = %s\ndefault_login_user = %s\n",
			u.internal, dovecotGroupName(d.t, u.mailGID), u.login)
	}
	conf := strings.NewReplacer(
		"{{dir}}", d.Dir,
		"{{instance}}", filepath.Base(d.Dir),
		"{{host}}", d.Host,
		"{{users}}", users,
		"{{uid}}", u.mailUID,
		"{{gid}}", u.mailGID,
		"{{port}}", strconv.Itoa(d.Port),
		"{{tlsport}}", strconv.Itoa(d.TLSPort),
	).Replace(dovecotConfig)
	if err := os.WriteFile(d.configPath(), []byte(conf), 0o644); err != nil {
		d.t.Fatalf("Dovecot config: %v", err)
	}
}

// start picks two free ports, starts the master process on them and
// waits until both serve a greeting. errDovecotPortTaken means another
// process took a port meanwhile.
func (d *Dovecot) start() error {
	ports := dovecotFreePorts(d.t, d.Host, 2)
	d.Port, d.TLSPort = ports[0], ports[1]
	d.writeConfig()
	os.Remove(filepath.Join(d.Dir, "dovecot.log")) // the log of a failed attempt

	// -F: in the foreground, so that the test owns the process. Its own
	// process group, so that stop can see every child gone.
	var stderr bytes.Buffer
	cmd := exec.Command(dovecotBinary, "-F", "-c", d.configPath())
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	d.cmd = cmd
	d.exited = make(chan struct{})
	go func() {
		d.waited = cmd.Wait()
		close(d.exited)
	}()

	deadline := time.Now().Add(inboxtest.Patience)
	for {
		err := d.greets(d.Addr(), nil, deadline)
		if err == nil {
			err = d.greets(d.TLSAddr(), d.TLSConfig(), deadline)
		}
		if err == nil {
			return nil
		}
		// Until the master listens, connections are refused; once it
		// does, they wait for a login process, and anything but a
		// greeting is a broken instance. A process that cannot start is
		// retried by the master with growing pauses: a Fatal line ends
		// the attempt too, as does the master's exit.
		select {
		case <-d.exited:
			err = fmt.Errorf("dovecot exited (%v)", d.waited)
		default:
			if time.Now().After(deadline) {
				err = fmt.Errorf("no IMAP greeting within %v: %w", inboxtest.Patience, err)
			} else if errors.Is(err, syscall.ECONNREFUSED) && !strings.Contains(d.Log(), " Fatal: ") {
				time.Sleep(10 * time.Millisecond) // polling a port that is not open yet
				continue
			}
		}
		d.stop()
		out := stderr.String() // complete: the master has exited
		if strings.Contains(d.Log()+out, "Address already in use") {
			return errDovecotPortTaken
		}
		return fmt.Errorf("%w\n%s", err, out)
	}
}

// greets dials addr (with TLS when config is not nil) and reads the
// server's first line, which must be an untagged OK, all before deadline.
func (d *Dovecot) greets(addr string, config *tls.Config, deadline time.Time) error {
	dialer := &net.Dialer{Deadline: deadline}
	var conn net.Conn
	var err error
	if config != nil {
		conn, err = tls.DialWithDialer(dialer, "tcp", addr, config)
	} else {
		conn, err = dialer.Dial("tcp", addr)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("greeting from %s: %w", addr, err)
	}
	if !strings.HasPrefix(line, "* OK") {
		return fmt.Errorf("greeting from %s: %q", addr, line)
	}
	return nil
}

// stop ends the instance with SIGTERM to its process group, waits for
// the master, and then checks that the group is empty. A process
// still there after inboxtest.Patience is killed and fails the test.
func (d *Dovecot) stop() {
	if d.cmd == nil {
		return
	}
	pgid := d.cmd.Process.Pid
	// To the whole group: each process ends at once (a few ms, rarely
	// 2 s). The master alone stops its children and polls them for up to
	// a few seconds, 2-3 s every time here.
	syscall.Kill(-pgid, syscall.SIGTERM)
	timer := time.NewTimer(inboxtest.Patience)
	defer timer.Stop()
	select {
	case <-d.exited:
	case <-timer.C:
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-d.exited
		d.t.Errorf("Dovecot did not stop within %v of SIGTERM: killed", inboxtest.Patience)
	}
	d.cmd = nil
	deadline := time.Now().Add(inboxtest.Patience)
	for left := dovecotGroup(pgid); len(left) > 0; left = dovecotGroup(pgid) {
		if time.Now().After(deadline) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			d.t.Errorf("Dovecot processes outlived their master by %v, killed: %s",
				inboxtest.Patience, strings.Join(left, ", "))
			break
		}
		time.Sleep(10 * time.Millisecond) // polling processes that are ending
	}
	if d.t.Failed() {
		d.t.Logf("Dovecot log (%s):\n%s", filepath.Join(d.Dir, "dovecot.log"), d.Log())
	}
}

// dovecotFreePorts returns n distinct TCP ports on host that nothing listens on
// now: held open together so that they differ, then released for Dovecot.
func dovecotFreePorts(t testing.TB, host string, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// dovecotGroup lists the live processes of process group pgid as
// "pid (name)". A zombie is dead (and may never be reaped when its
// parent died first, where PID 1 reaps no orphans), so it is not listed.
func dovecotGroup(pgid int) []string {
	if syscall.Kill(-pgid, 0) != nil {
		return nil // the common case: the group is empty
	}
	var live []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		// /proc/PID/stat: pid (comm) state ppid pgrp ...; comm may hold spaces.
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // it ended meanwhile
		}
		stat := string(b)
		i := strings.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(stat[i+1:])
		if len(fields) < 3 || fields[0] == "Z" || fields[2] != strconv.Itoa(pgid) {
			continue
		}
		live = append(live, stat[:i+1])
	}
	return live
}

func dovecotGroupName(t testing.TB, gid string) string {
	g, err := user.LookupGroupId(gid)
	if err != nil {
		t.Fatalf("Dovecot group: %v", err)
	}
	return g.Name
}
