#!/usr/bin/python
# -*- coding: utf-8 -*-
# svc_facts: `svc status --json` of a host as the host fact `svc`, with a
# summary a play can test (converged, the unconverged processes).  The
# status is passed on whole, so a field svc status gains reaches the facts.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: svc_facts
short_description: svc status as host facts
description:
  - Runs C(svc status --json) and returns it as the fact C(svc) (C(ansible_facts.svc)).
  - Adds C(converged) (every process mapping a serviced file runs the fix level on disk, with no
    thread left in replaced code), C(unconverged) (those that do not, with pid, command, path, level,
    disk_level and not_converged), C(convergence_unknown) (svc could not read some process) and
    C(installed) (ids of the installed fixes).
version_added: "0.1.0"
options:
  root:
    description: System root (C(svc --root)).
    type: path
    default: /
  svc_path:
    description: The svc program on the host.
    type: path
    default: svc
notes:
  - Read-only; check mode is supported.
author:
  - svc maintainers
'''

EXAMPLES = r'''
- svc.fleet.svc_facts:
- ansible.builtin.assert:
    that: ansible_facts.svc.converged
    fail_msg: "{{ ansible_facts.svc.unconverged }}"
'''

RETURN = r'''
ansible_facts:
  description: C(svc) - the status (fixes, files with processes, last_boot, unreadable) plus the summary.
  returned: always
  type: dict
'''

import json
import os

from ansible.module_utils.basic import AnsibleModule


def summary(status):
    # svc's rule: another level than the one on disk, or a thread still in
    # replaced code (not_converged); a file whose convergence svc could not
    # tell (converged null) is never counted as converged
    unconverged = []
    unknown = False
    for f in status.get('files', []):
        unknown = unknown or f.get('converged') is None
        for p in f.get('processes', []):
            if p.get('level') != f.get('level') or p.get('not_converged'):
                u = dict(p)
                u.update(command=p.get('comm'), path=f.get('path'), disk_level=f.get('level'))
                unconverged.append(u)
    status['unconverged'] = unconverged
    status['convergence_unknown'] = unknown
    status['converged'] = not unconverged and not unknown
    status['installed'] = [x['id'] for x in status.get('fixes', [])
                           if x.get('state') == 'installed']
    return status


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type='path', default='/'),
            svc_path=dict(type='path', default='svc'),
        ),
        supports_check_mode=True,
    )
    svc = module.params['svc_path']
    if os.sep not in svc:
        svc = module.get_bin_path(svc, required=True)
    cmd = [svc, '--root', module.params['root'], 'status', '--json']
    rc, out, err = module.run_command(cmd)
    # 3: printed, but some process could not be read (convergence unknown)
    if rc not in (0, 3):
        lines = [l for l in err.splitlines() if l.strip()]
        module.fail_json(msg=lines[-1] if lines else 'svc exited %d' % rc, rc=rc, cmd=cmd)
    try:
        status = json.loads(out)
    except ValueError:
        module.fail_json(msg='svc status printed no JSON', stdout=out, cmd=cmd)
    module.exit_json(changed=False, ansible_facts=dict(svc=summary(status)))


if __name__ == '__main__':
    main()
