// How many CPUs this process may use, for --processes auto: the cgroup's
// CPU quota (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us over
// cpu.cfs_period_us), read up the cgroup tree since a parent's limit binds
// too, and never more than the CPUs the affinity mask allows
// (runtime.NumCPU reads sched_getaffinity(2)). A container's CPU limit is
// its quota, while the machine's CPU count is what it sees.
package server

import (
	"fmt"
	"math"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
)

// AutoProcesses is the worker count for --processes auto, one per CPU the
// process may use, and where that number comes from, for the banner.
func AutoProcesses() (n int, from string) {
	return autoProcesses("/", runtime.NumCPU())
}

// autoProcesses reads the cgroup files under root; cpus is the affinity
// mask's count.
func autoProcesses(root string, cpus int) (int, string) {
	quota, ok := cgroupCPUQuota(root)
	if !ok || math.Ceil(quota) >= float64(cpus) {
		return cpus, "--processes auto: " + plural(cpus, "CPU")
	}
	n := max(int(math.Ceil(quota)), 1)
	return n, fmt.Sprintf("--processes auto: cgroup CPU limit %s", strconv.FormatFloat(quota, 'f', -1, 64))
}

// cgroupCPUQuota returns the smallest CPU quota, in CPUs, of the process's
// cgroup and its parents; ok is false when none is set.
func cgroupCPUQuota(root string) (quota float64, ok bool) {
	data, err := os.ReadFile(path.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0, false
	}
	quota = math.Inf(1)
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		// "ID:CONTROLLERS:PATH"; v2's line is "0::PATH" (cgroups(7)).
		fields := strings.SplitN(line, ":", 3)
		if len(fields) != 3 {
			continue
		}
		switch {
		case fields[0] == "0" && fields[1] == "":
			quota = min(quota, walkQuota(path.Join(root, "sys/fs/cgroup"), fields[2], cgroupV2Quota))
		case hasController(fields[1], "cpu"):
			quota = min(quota, walkQuota(path.Join(root, "sys/fs/cgroup", fields[1]), fields[2], cgroupV1Quota))
			quota = min(quota, walkQuota(path.Join(root, "sys/fs/cgroup/cpu"), fields[2], cgroupV1Quota))
		}
	}
	return quota, !math.IsInf(quota, 1)
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// walkQuota returns the smallest quota read from dir/group and each of its
// parents up to dir; +Inf when none is set.
func walkQuota(dir, group string, read func(string) (float64, bool)) float64 {
	quota := math.Inf(1)
	for g := path.Clean("/" + group); ; g = path.Dir(g) {
		if q, ok := read(path.Join(dir, g)); ok {
			quota = min(quota, q)
		}
		if g == "/" {
			return quota
		}
	}
}

// cgroupV2Quota reads cpu.max: "QUOTA PERIOD" in microseconds, or "max
// PERIOD" for no limit.
func cgroupV2Quota(dir string) (float64, bool) {
	data, err := os.ReadFile(path.Join(dir, "cpu.max"))
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 || fields[0] == "max" {
		return 0, false
	}
	return quotaOf(fields[0], fields[1])
}

// cgroupV1Quota reads cpu.cfs_quota_us (-1 for no limit) and
// cpu.cfs_period_us.
func cgroupV1Quota(dir string) (float64, bool) {
	q, err1 := os.ReadFile(path.Join(dir, "cpu.cfs_quota_us"))
	p, err2 := os.ReadFile(path.Join(dir, "cpu.cfs_period_us"))
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return quotaOf(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

func quotaOf(quotaText, periodText string) (float64, bool) {
	quota, err1 := strconv.ParseInt(quotaText, 10, 64)
	period, err2 := strconv.ParseInt(periodText, 10, 64)
	if err1 != nil || err2 != nil || quota <= 0 || period <= 0 {
		return 0, false
	}
	return float64(quota) / float64(period), true
}
