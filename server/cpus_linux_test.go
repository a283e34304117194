package server

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAutoProcesses(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // under the fake root
		cpus  int
		want  int
		from  string
	}{
		{"no cgroup files", nil, 4, 4, "--processes auto: 4 CPUs"},
		{"v2 unlimited", map[string]string{
			"proc/self/cgroup":          "0::/app\n",
			"sys/fs/cgroup/app/cpu.max": "max 100000\n",
		}, 4, 4, "--processes auto: 4 CPUs"},
		{"v2 quota rounds up", map[string]string{
			"proc/self/cgroup":          "0::/app\n",
			"sys/fs/cgroup/app/cpu.max": "150000 100000\n",
		}, 4, 2, "--processes auto: cgroup CPU limit 1.5"},
		{"v2 parent's quota binds", map[string]string{
			"proc/self/cgroup":              "0::/pod/app\n",
			"sys/fs/cgroup/pod/cpu.max":     "100000 100000\n",
			"sys/fs/cgroup/pod/app/cpu.max": "max 100000\n",
		}, 8, 1, "--processes auto: cgroup CPU limit 1"},
		{"v2 quota above the affinity mask", map[string]string{
			"proc/self/cgroup":      "0::/\n",
			"sys/fs/cgroup/cpu.max": "800000 100000\n",
		}, 2, 2, "--processes auto: 2 CPUs"},
		{"v2 below one CPU", map[string]string{
			"proc/self/cgroup":      "0::/\n",
			"sys/fs/cgroup/cpu.max": "20000 100000\n",
		}, 2, 1, "--processes auto: cgroup CPU limit 0.2"},
		{"v1 quota", map[string]string{
			"proc/self/cgroup": "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n",
			"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us":  "300000\n",
			"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
		}, 8, 3, "--processes auto: cgroup CPU limit 3"},
		{"v1 unlimited", map[string]string{
			"proc/self/cgroup":                    "1:cpu:/\n",
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  "-1\n",
			"sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
		}, 2, 2, "--processes auto: 2 CPUs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tt.files {
				p := filepath.Join(root, name)
				require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
				require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
			}
			n, from := autoProcesses(root, tt.cpus)
			assert.Equal(t, tt.want, n)
			assert.Equal(t, tt.from, from)
		})
	}
}
