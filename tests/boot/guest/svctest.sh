#!/bin/bash
# Guest side of the svc boot test (tests/boot/run.sh is the host side).
# svctest.step=STEP on the kernel command line says what to do this boot:
#   install  wait until greeter.service maps the library, `svc install` the
#            fix (expected: exit 3, restart required), then reboot
#   check    wait for the boot to finish, collect the evidence, power off
# Results go to /run/svctest, then as a tar onto the second disk (/dev/vdb),
# which the host reads back: no interleaving with console output.  Progress
# lines go to the console with the "svctest:" prefix.
set -u
OUT=/run/svctest
LIB=/usr/lib/libgreet.so.1
mkdir -p "$OUT"
step=
for w in $(cat /proc/cmdline); do
	case "$w" in svctest.step=*) step=${w#svctest.step=} ;; esac
done
say() { echo "svctest: $*"; }

finish() {   # finish "SYSTEMCTL-VERB [--force]"
	echo "$step" >"$OUT/step"
	cat /proc/uptime >"$OUT/uptime-end"
	if tar -C /run -cf /dev/vdb svctest; then
		sync
		say "results written ($step)"
	else
		say "cannot write results to /dev/vdb"
	fi
	systemctl $1
	exit 0
}

greeter_maps_lib() {
	local pid
	pid=$(systemctl show -p MainPID --value greeter.service)
	[ -n "$pid" ] && [ "$pid" != 0 ] && grep -q libgreet "/proc/$pid/maps" 2>/dev/null
}

collect_common() {
	sha256sum "$LIB" | cut -d' ' -f1 >"$OUT/lib.sha"
	/usr/bin/greeter >"$OUT/greeter-now.out" 2>&1
	svc status --json >"$OUT/status.json" 2>"$OUT/status.err"
	echo $? >"$OUT/status.rc"
	svc status >"$OUT/status.txt" 2>&1
	ls -la /usr/lib >"$OUT/usr-lib.ls" 2>&1
	find /var/lib/svc -printf '%p %y\n' >"$OUT/state.ls" 2>&1
	systemctl show -p Id -p ConditionResult -p ActiveState -p SubState -p Result \
		-p ExecMainStatus -p ExecMainStartTimestampMonotonic \
		-p ExecMainExitTimestampMonotonic -p InactiveExitTimestampMonotonic \
		-p ActiveEnterTimestampMonotonic svc-boot.service greeter.service \
		>"$OUT/units.txt" 2>&1
}

case "$step" in
install)
	say "step install: waiting for greeter.service to map $LIB"
	for _ in $(seq 120); do greeter_maps_lib && break; sleep 0.5; done
	greeter_maps_lib || say "greeter.service does not map $LIB"
	svc install /usr/lib/svctest/FIX-1.hfx >"$OUT/install.out" 2>&1
	echo $? >"$OUT/install.rc"
	say "svc install exited $(cat "$OUT/install.rc")"
	collect_common
	finish reboot
	;;
check)
	say "step check: waiting for the boot to finish"
	timeout 240 systemctl is-system-running --wait >"$OUT/system-running" 2>&1
	collect_common
	systemd-analyze time >"$OUT/analyze-time.txt" 2>&1
	systemd-analyze blame >"$OUT/analyze-blame.txt" 2>&1
	systemd-analyze verify /lib/systemd/system/svc-boot.service >"$OUT/verify.out" 2>&1
	echo $? >"$OUT/verify.rc"
	journalctl -b -o short-monotonic --no-pager >"$OUT/journal.txt" 2>&1
	say "evidence collected"
	# the evidence is on /dev/vdb: no need to stop every service one by one
	# (slow under emulation); --force still unmounts before powering off
	finish "poweroff --force"
	;;
*)
	say "unknown step '$step'"
	finish poweroff
	;;
esac
