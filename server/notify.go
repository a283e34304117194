// Telling systemd how the service is (sd_notify(3), a Type=notify unit):
// READY=1 once the workers serve, RELOADING=1 and READY=1 around a reload,
// STOPPING=1 when a stop begins, and a STATUS= line with each. As uWSGI
// does, gowsgi notifies whenever NOTIFY_SOCKET is set, with no option; an
// abstract socket ("@name") works as a path does.
package server

import (
	"log/slog"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifier sends the service's state to NOTIFY_SOCKET; it does nothing
// when the variable is not set.
type notifier struct{ log *slog.Logger }

// send sends one datagram of "KEY=VALUE" lines. A failure is logged, never
// fatal: systemd not hearing is no reason to stop serving.
func (n notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("cannot notify systemd", "error", err)
	}
}

func (n notifier) ready(status string) {
	n.send(daemon.SdNotifyReady + "\nSTATUS=" + status)
}

// reloading marks the start of a reload; systemd 253 and later, for
// Type=notify-reload, want the CLOCK_MONOTONIC time it began with it.
func (n notifier) reloading() {
	n.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec() + "STATUS=reloading the workers")
}

func (n notifier) stopping(status string) {
	n.send(daemon.SdNotifyStopping + "\nSTATUS=" + status)
}

func (n notifier) status(status string) {
	n.send("STATUS=" + status)
}
