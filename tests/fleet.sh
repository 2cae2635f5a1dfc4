#!/usr/bin/env bash
# make check-fleet.  The Ansible collection (tools/ansible) with Debian's ansible-core: an
# inventory of hosts on this machine (connection local), each with its own
# scratch root and its own running processes, driven by the rollout playbook
# of docs/fleet.md: check mode changes nothing, waves, idempotence (second
# run changed=0), rollback, and a host whose process cannot be patched stops
# its wave, named in the report, before the next wave touches anything.
source "$(dirname "$0")/lib.sh"
scratch_new fleet
hot_fixture_root
n=0; ok() { n=$((n + 1)); echo "ok $n - $* (${SECONDS}s)"; }
command -v ansible-playbook >/dev/null || fail "ansible-playbook not installed (tools/deps.sh base)"

# Ansible sees nothing outside the scratch dir: its config, collections,
# temp dirs and home are all in $S.
A="$S/ansible"
mkdir -p "$A/home" "$A/local-tmp" "$A/remote-tmp" "$A/collections/ansible_collections/svc"
cp -r "$SVC_TOP/tools/ansible" "$A/collections/ansible_collections/svc/fleet"
printf '[defaults]\nretry_files_enabled = False\nforks = 5\n' >"$A/ansible.cfg"
export ANSIBLE_CONFIG="$A/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$A/collections" \
	ANSIBLE_LOCAL_TEMP="$A/local-tmp" ANSIBLE_REMOTE_TEMP="$A/remote-tmp" \
	ANSIBLE_NOCOLOR=1 ANSIBLE_HOME="$A/home" HOME="$A/home" ANSIBLE_GALAXY_DISABLE_GPG_VERIFY=1
PLAY="$SVC_TOP/tools/ansible/playbooks/rollout.yml"
for m in svc_fix svc_facts; do
	ansible-doc -t module "svc.fleet.$m" >/dev/null 2>"$S/doc.err" || fail "ansible-doc $m: $(cat "$S/doc.err")"
done
# the playbook docs/fleet.md shows is this one
python3 - "$SVC_TOP/docs/fleet.md" "$PLAY" <<'PY' || fail "docs/fleet.md does not show tools/ansible/playbooks/rollout.yml"
import sys
doc, play = open(sys.argv[1]).read(), open(sys.argv[2]).read()
assert play.strip() in doc
PY

"$SVC" --quiet pack --key "$S/vendor.key" --out "$S/FIX-1.hfx" --id FIX-1 --series calc --seq 1 \
	--target "/usr/lib/libcalc.so.1=$S/o/libcalc.so.1" --objects "$S/o/calc1.o:$S/o/calc2.o" \
	--target "/usr/lib/libpark.so.1=$S/o/libpark.so.1" --objects "$S/o/park1.o:$S/o/park2.o"

# hosts: h1..h3 run workers; h4 also runs a parker (a thread parked in the
# bytes the fix replaces: it cannot be patched); h5 runs a worker
declare -A WPID
HOSTS="h1 h2 h3 h4 h5"
{
	echo "[good]"; for h in h1 h2 h3; do echo "$h svc_root=$S/$h/root"; done
	echo "[late]"; for h in h4 h5; do echo "$h svc_root=$S/$h/root"; done
	echo "[all:vars]"
	echo "ansible_connection=local"
	echo "ansible_python_interpreter=/usr/bin/python3"
	echo "svc_path=$SVC"
} >"$A/inventory"
for h in $HOSTS; do
	mkdir -p "$S/$h"
	cp -a "$R" "$S/$h/root"
	# 2 threads, sleeping 1 ms every 200 calls: five hosts' workers leave the
	# machine to ansible
	start_bg "$S/$h.out" "$S/$h/root/usr/bin/worker" 2 50 200; WPID[$h]=$BGPID
done
start_bg "$S/park.out" "$S/h4/root/usr/bin/parker"; PARK=$BGPID
for h in $HOSTS; do wait_line "$S/$h.out" "^14 calc v1" || fail "$h: worker not at base"; done

# wait_line, with room for a loaded machine (30 s)
wait_line() {
	local i
	for i in $(seq 600); do tail -n1 "$1" | grep -q "$2" && return 0; sleep 0.05; done
	echo "$1: $(tail -n1 "$1")" >&2; return 1
}

play() {  # play EXPECTED-EXIT ARGS...: run the playbook, output in $S/play.out
	local want=$1; shift
	set +e
	ansible-playbook -i "$A/inventory" "$PLAY" -e "svc_package=$S/FIX-1.hfx" "$@" >"$S/play.out" 2>&1
	local got=$?
	set -e
	[ "$got" = "$want" ] || fail "ansible-playbook $* exited $got, not $want: $(cat "$S/play.out")"
}
recap() {  # recap HOST: its PLAY RECAP line
	grep -E "^$1 +:" "$S/play.out" | tail -n1
}

# --- check mode: every host says it would change, nothing changes
t_h1=$(tree_state "$S/h1/root")
play 0 -e svc_hosts=good --check --diff
for h in h1 h2 h3; do
	recap "$h" | grep -q "changed=1 " || fail "check mode: $h not 'changed': $(cat "$S/play.out")"
done
grep -q "^+/usr/lib/libcalc.so.1: FIX-1" "$S/play.out" || fail "check mode: no diff: $(cat "$S/play.out")"
grep -q "^-/usr/lib/libcalc.so.1: base" "$S/play.out" || fail "check mode: diff lacks before: $(cat "$S/play.out")"
[ "$t_h1" = "$(tree_state "$S/h1/root")" ] || fail "check mode changed h1's root"
[ -e "$S/h1/root/var" ] && fail "check mode created h1's state directory"
for h in h1 h2 h3; do wait_line "$S/$h.out" "^14 calc v1" || fail "check mode patched $h"; done
ok "check mode (--check --diff): svc --dry-run on each host, diff base -> FIX-1, nothing changed"

# --- the rollout in two waves: every host patched live, converged
play 0 -e svc_hosts=good -e '{"svc_waves": [1, 2]}'
[ "$(grep -c "^TASK \[Install or roll back the fix\]" "$S/play.out")" = 2 ] ||
	fail "not two waves: $(cat "$S/play.out")"
for h in h1 h2 h3; do
	recap "$h" | grep -q "changed=1 .*failed=0" || fail "rollout: $h: $(recap "$h")"
	wait_line "$S/$h.out" "^21 calc v2" || fail "rollout: $h's worker not patched"
	kill -0 "${WPID[$h]}" || fail "rollout: $h's worker died"
done
"$SVC" --root "$S/h1/root" status --json | grep -q '"converged":false' && fail "h1 not converged"
ok "rollout in waves [1, 2]: three hosts patched live, no restart, converged"

# --- idempotence: the second run changes nothing
play 0 -e svc_hosts=good -e '{"svc_waves": [1, 2]}'
for h in h1 h2 h3; do
	recap "$h" | grep -q "changed=0 .*failed=0" || fail "second run: $h: $(recap "$h")"
done
ok "second run: changed=0 on every host (svc's own no-op answer)"

# --- rollback (state: absent), by id, in one wave
play 0 -e svc_hosts=good -e svc_state=absent -e svc_fix_id=FIX-1 -e '{"svc_waves": ["100%"]}'
for h in h1 h2 h3; do
	recap "$h" | grep -q "changed=1 .*failed=0" || fail "rollback: $h: $(recap "$h")"
	wait_line "$S/$h.out" "^14 calc v1" || fail "rollback: $h's worker not reverted"
done
[ "$(sha "$S/h1/root/usr/lib/libcalc.so.1")" = "$(sha "$S/o/libcalc.so.1")" ] || fail "h1: base not back"
play 0 -e svc_hosts=good -e svc_state=absent -e svc_fix_id=FIX-1
for h in h1 h2 h3; do recap "$h" | grep -q "changed=0 " || fail "second rollback: $h: $(recap "$h")"; done
ok "rollback (state: absent): every process back at base, files restored; again: changed=0"

# --- a host whose process cannot be patched: its wave fails, the play stops
t_h5=$(tree_state "$S/h5/root")
play 2 -e svc_hosts=late -e '{"svc_waves": [1]}'
grep -q "not converged: pid $PARK (parker) maps /usr/lib/libpark.so.1" "$S/play.out" ||
	fail "the report does not name the parker: $(cat "$S/play.out")"
recap h4 | grep -q "failed=1" || fail "h4 did not fail: $(recap h4)"
grep -qE "^(ok|changed|failed|fatal): \[h5\]" "$S/play.out" && fail "h5 ran: $(cat "$S/play.out")"
[ "$t_h5" = "$(tree_state "$S/h5/root")" ] || fail "the next wave (h5) was touched"
wait_line "$S/h5.out" "^14 calc v1" || fail "h5's worker was patched"
wait_line "$S/h4.out" "^21 calc v2" || fail "h4's worker (patchable) not patched"
tail -n1 "$S/park.out" | grep -q "^park 1" || fail "the parker changed"
kill -0 "$PARK" || fail "the parker died"
ok "unpatchable process on h4: the wave fails naming pid $PARK (parker), h5 never touched"

# --- told otherwise: the rollout goes on past the unconverged host
play 0 -e svc_hosts=late -e '{"svc_waves": [1]}' -e svc_allow_unconverged=true
recap h4 | grep -q "failed=0" || fail "allowed: h4 failed: $(recap h4)"
recap h5 | grep -q "changed=1 .*failed=0" || fail "allowed: h5: $(recap h5)"
wait_line "$S/h5.out" "^21 calc v2" || fail "allowed: h5's worker not patched"
grep -q "\"pid\": $PARK" "$S/play.out" || fail "allowed: the parker not listed: $(cat "$S/play.out")"
ok "svc_allow_unconverged=true: h4 reports the parker for a restart, h5 is patched"

# --- svc_facts: the status as host facts, and svc's one-line error on failure
cat >"$A/facts.yml" <<'EOF'
- hosts: h4
  gather_facts: false
  tasks:
    - svc.fleet.svc_facts:
        root: "{{ svc_root }}"
        svc_path: "{{ svc_path }}"
    - ansible.builtin.debug:
        msg: "facts converged={{ ansible_facts.svc.converged }} unconverged={{ ansible_facts.svc.unconverged | map(attribute='pid') | list }} installed={{ ansible_facts.svc.installed }}"
    - svc.fleet.svc_fix:
        package: "{{ bad_package }}"
        root: "{{ svc_root }}"
        svc_path: "{{ svc_path }}"
EOF
repack "$S/FIX-1.hfx" "$S/bad.hfx" 'members = [[n, (d[:-1] + bytes([d[-1] ^ 1])) if n == "hp/0" else d] for n, d in members]'
set +e
ansible-playbook -i "$A/inventory" "$A/facts.yml" -e "bad_package=$S/bad.hfx" >"$S/play.out" 2>&1
rc=$?
set -e
[ "$rc" = 2 ] || fail "facts play exited $rc: $(cat "$S/play.out")"
grep -q "facts converged=False unconverged=\[$PARK\] installed=\['FIX-1'\]" "$S/play.out" ||
	fail "facts: $(cat "$S/play.out")"
grep -q '"msg": "svc: .*member hp/0: sha256 does not match' "$S/play.out" ||
	fail "svc_fix did not fail with svc's line: $(cat "$S/play.out")"
ok "svc_facts: converged=false naming the parker; a tampered package fails with svc's one-line error"

stop_pid "$PARK"
for h in $HOSTS; do stop_pid "${WPID[$h]}"; done
echo "fleet: $n passed, 0 failed"
