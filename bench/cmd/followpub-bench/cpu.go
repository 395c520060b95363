package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuMark is a reading of the CPU time spent so far by the whole machine, by this process (the
// driver: the simulator it serves, and the producer limit's writer while that runs) and by the
// broker.
type cpuMark struct {
	at      time.Time
	machine time.Duration // busy time of all CPUs since boot (/proc/stat)
	self    time.Duration // user + system time of this process
	broker  time.Duration // user + system time of the broker; 0 when its pid is unknown
	pid     int           // the broker's pid, 0 when unknown
	faults  int64         // page faults of this process (minor and major)
}

// cpuSpent is the CPU time spent between two marks.
type cpuSpent struct {
	wall, machine, self, broker time.Duration
	faults                      int64 // the driver's page faults
}

// brokerPID returns the broker's process id from FOLLOWPUB_TEST_KAFKA_PID (scripts/kafka/start.sh's
// env file), or 0, saying why, when it is not set or names no running process: the broker's CPU
// time is then reported as unknown.
func brokerPID() int {
	v := os.Getenv("FOLLOWPUB_TEST_KAFKA_PID")
	if v == "" {
		progress("FOLLOWPUB_TEST_KAFKA_PID is not set: the broker's CPU time is not measured")
		return 0
	}
	pid, err := strconv.Atoi(v)
	if err == nil {
		_, err = os.Stat(fmt.Sprintf("/proc/%d/stat", pid))
	}
	if err != nil {
		progress("FOLLOWPUB_TEST_KAFKA_PID=%s: %v; the broker's CPU time is not measured", v, err)
		return 0
	}
	return pid
}

// clockTick is the unit of /proc/stat: USER_HZ, 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// markCPU reads the CPU time spent so far; broker is the broker's pid, 0 to leave it out.
func markCPU(broker int) (cpuMark, error) {
	m := cpuMark{at: time.Now(), pid: broker}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return m, fmt.Errorf("reading the machine's CPU time: %w", err)
	}
	m.machine, err = busyTime(string(b))
	if err != nil {
		return m, err
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return m, fmt.Errorf("reading the driver's CPU time: %w", err)
	}
	m.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	m.faults = ru.Minflt + ru.Majflt
	if broker > 0 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", broker))
		if err != nil {
			return m, fmt.Errorf("reading the broker's CPU time (FOLLOWPUB_TEST_KAFKA_PID=%d): %w", broker, err)
		}
		if m.broker, err = procTime(string(b)); err != nil {
			return m, err
		}
	}
	return m, nil
}

// procTime returns utime + stime from a /proc/PID/stat line. The fields are counted after the
// command name's closing parenthesis, since the name may hold spaces.
func procTime(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	f := strings.Fields(stat[i+1:])
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("/proc/PID/stat: unexpected line %q", stat)
	}
	var ticks int64
	for _, s := range f[11:13] { // fields 14 and 15 of the line: utime, stime
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/PID/stat: %q: %w", stat, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// busyTime sums the busy columns of /proc/stat's "cpu" line: user, nice, system, irq and softirq.
// Idle, iowait and steal (time the hypervisor gave to other machines) are not work done here; guest
// time is already inside user.
func busyTime(stat string) (time.Duration, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: column %d of %q: %w", i, line, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// since returns the CPU time spent from m to now.
func (m cpuMark) since() (cpuSpent, error) {
	now, err := markCPU(m.pid)
	if err != nil {
		return cpuSpent{}, err
	}
	return cpuSpent{wall: now.at.Sub(m.at), machine: now.machine - m.machine, self: now.self - m.self, broker: now.broker - m.broker, faults: now.faults - m.faults}, nil
}

// cpuShares splits the machine's CPU time over a run between the process producing to Kafka, the
// simulator, the broker and the rest (the kernel's own work, other tenants of the machine).
type cpuShares struct {
	busy                                       float64 // CPUs kept busy on average
	machine, producer, simulator, broker, rest time.Duration
}

func (c cpuSpent) shares(producer, simulator time.Duration) cpuShares {
	return cpuShares{
		busy: c.machine.Seconds() / c.wall.Seconds(), machine: c.machine, producer: producer, simulator: simulator,
		broker: c.broker, rest: c.machine - producer - simulator - c.broker,
	}
}
