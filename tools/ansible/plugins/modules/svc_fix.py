#!/usr/bin/python
# -*- coding: utf-8 -*-
# svc_fix: install or roll back one svc hotfix package on a host, through
# `svc ... --json`.  Every answer comes from svc itself: `changed` is svc's
# own no-op answer, check mode is `svc install --dry-run` (svc verifies the
# package and says what it would do), restart_required is svc's exit code 3.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: svc_fix
short_description: Install or roll back an svc hotfix package (optionally live-patching processes)
description:
  - Runs C(svc install PKG --json) or C(svc rollback ID --json) on the host.
  - C(changed) is svc's own answer (false when the fix is already at that state and no process needed it).
  - Check mode runs C(svc install --dry-run) / C(svc rollback --dry-run), which verifies the package in full
    (signature, member hashes, anti-rollback sequence, base versions) and reports what it would do, changing nothing.
  - Diff mode shows the fix level of each target file before and after.
  - The package is a local file on the controller; the action plugin copies it to the host (see I(remote_src)).
version_added: "0.1.0"
options:
  package:
    description:
      - Path of the signed package (C(.hfx)) on the controller (on the host with I(remote_src)).
      - Required with I(state=present); with I(state=absent) it names the fix when I(id) is not given.
    type: path
  id:
    description: The fix id to roll back (I(state=absent)); read from I(package) when omitted.
    type: str
  state:
    description: C(present) installs the fix, C(absent) rolls it back.
    type: str
    choices: [present, absent]
    default: present
  hotpatch:
    description: Also patch (or, rollback, un-patch) every running process in memory (C(/hotpatch:enable)).
    type: bool
    default: false
  root:
    description: System root svc services (C(svc --root)).
    type: path
    default: /
  wait:
    description: Seconds to wait for svc's transaction lock (C(svc --wait)).
    type: int
    default: 0
  svc_path:
    description: The svc program on the host.
    type: path
    default: svc
  allow_unconverged:
    description:
      - When false (the default), a run that leaves a process not patched (not converged) fails the task,
        so a rolling play stops its wave.  The processes are in I(not_converged) either way.
    type: bool
    default: false
  remote_src:
    description: I(package) is already on the host; do not copy it.
    type: bool
    default: false
notes:
  - Check mode and diff mode are supported.
  - A cold install whose target is in use is not a failure; it leaves the swap for C(svc boot) and
    returns I(restart_required=true), like C(svc).
author:
  - svc maintainers
'''

EXAMPLES = r'''
- name: Install the fix and patch running processes
  svc.fleet.svc_fix:
    package: files/FIX-2026-0042.hfx
    hotpatch: true

- name: Roll it back
  svc.fleet.svc_fix:
    id: FIX-2026-0042
    state: absent
    hotpatch: true
'''

RETURN = r'''
fix:
  description: The fix id.
  returned: always
  type: str
restart_required:
  description: svc exited 3 (a swap waits for boot, or a process could not be patched).
  returned: always
  type: bool
not_converged:
  description: Processes that could not be patched (or reverted), each with pid, command, path and reason.
  returned: always
  type: list
  elements: dict
in_use:
  description: Processes that keep a cold swap pending (restart required).
  returned: always
  type: list
  elements: dict
would_patch:
  description: Check mode with hotpatch, the processes svc would patch (or take the fix out of).
  returned: always
  type: list
  elements: dict
targets:
  description: Per target file, what svc did or would do (path, action, from, to, reason).
  returned: always
  type: list
  elements: dict
txn:
  description: The transaction number svc wrote (check mode, the one it would take); 0 if none.
  returned: always
  type: int
messages:
  description: svc's report lines.
  returned: always
  type: list
  elements: str
svc_rc:
  description: svc's exit code (0, or 3 restart required; on failure C(rc) holds it).
  returned: success
  type: int
'''

import json
import os

from ansible.module_utils.basic import AnsibleModule


def svc_error(rc, out, err):
    """svc's one-line error (its last stderr line), else what there is."""
    lines = [l for l in (err or '').splitlines() if l.strip()]
    if lines:
        return lines[-1]
    return 'svc exited %d%s' % (rc, (': ' + out.strip()) if out.strip() else '')


def fix_id_of(module, svc, package):
    rc, out, err = module.run_command([svc, 'inspect', package])
    if rc != 0:
        module.fail_json(msg=svc_error(rc, out, err), rc=rc)
    for line in out.splitlines():
        if line.startswith('id '):
            return line[3:].strip()
    module.fail_json(msg='%s: no fix id in the package manifest' % package)


def process(p):
    return {'pid': p.get('pid'), 'command': p.get('comm'), 'path': p.get('path'),
            'reason': p.get('reason')}


def level_text(targets, key):
    return ''.join('%s: %s\n' % (t['path'], t.get(key) or '(none)') for t in targets)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            package=dict(type='path'),
            id=dict(type='str'),
            state=dict(type='str', default='present', choices=['present', 'absent']),
            hotpatch=dict(type='bool', default=False),
            root=dict(type='path', default='/'),
            wait=dict(type='int', default=0),
            svc_path=dict(type='path', default='svc'),
            allow_unconverged=dict(type='bool', default=False),
            remote_src=dict(type='bool', default=False),
        ),
        required_if=[('state', 'present', ('package',))],
        required_one_of=[('package', 'id')],
        supports_check_mode=True,
    )
    p = module.params
    svc = p['svc_path']
    if os.sep not in svc:
        svc = module.get_bin_path(svc, required=True)

    cmd = [svc, '--root', p['root'], '--wait', str(p['wait'])]
    if p['state'] == 'present':
        fix = None
        cmd += ['install', p['package']]
    else:
        fix = p['id'] or fix_id_of(module, svc, p['package'])
        cmd += ['rollback', fix]
    if p['hotpatch']:
        cmd.append('--hotpatch')
    if module.check_mode:
        cmd.append('--dry-run')
    cmd.append('--json')

    rc, out, err = module.run_command(cmd)
    if rc not in (0, 3):
        # 1 failed, nothing changed; 2 usage: svc's one line says why
        module.fail_json(msg=svc_error(rc, out, err), rc=rc, cmd=cmd, stderr=err)
    try:
        rep = json.loads(out)
    except ValueError:
        module.fail_json(msg='svc printed no JSON report (exit %d)' % rc, rc=rc, cmd=cmd,
                         stdout=out, stderr=err)

    procs = rep.get('processes', [])
    result = dict(
        changed=bool(rep.get('changed')),
        fix=rep.get('package') or fix,
        restart_required=rc == 3,
        txn=rep.get('txn', 0),
        targets=rep.get('targets', []),
        not_converged=[process(x) for x in procs
                       if x.get('outcome') in ('not-patched', 'not-converged')],
        in_use=[process(x) for x in procs if x.get('outcome') == 'in-use'],
        would_patch=[process(x) for x in procs
                     if x.get('outcome') in ('would-patch', 'would-revert')],
        messages=rep.get('messages', []),
        # not `rc`: Ansible fails any result whose rc is not 0, and 3 is a success
        svc_rc=rc,
        cmd=cmd,
    )
    if module._diff:
        targets = [t for t in result['targets'] if t.get('action') != 'refused']
        before = level_text(targets, 'from')
        after = before if not result['changed'] else ''.join(
            '%s: %s\n' % (t['path'], t.get('from') if t.get('action') == 'pending'
                          else t.get('to') or '(none)') for t in targets)
        result['diff'] = dict(before=before, after=after,
                              before_header='fix levels (%s)' % p['root'],
                              after_header='fix levels (%s)' % p['root'])
    if result['not_converged'] and not p['allow_unconverged']:
        names = '; '.join('pid %s (%s) maps %s: %s' % (x['pid'], x['command'], x['path'],
                                                         x['reason'])
                          for x in result['not_converged'])
        module.fail_json(msg='not converged: %s' % names, rc=rc, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
