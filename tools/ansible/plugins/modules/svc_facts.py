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
  - Adds C(converged) (every process mapping a serviced file runs the fix level on disk),
    C(unconverged) (those that do not, with pid, command, path, level and disk_level) and
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
    unconverged = []
    for f in status.get('files', []):
        for p in f.get('processes', []):
            if p.get('level') != f.get('level'):
                u = dict(p)
                u.update(command=p.get('comm'), path=f.get('path'), disk_level=f.get('level'))
                unconverged.append(u)
    status['unconverged'] = unconverged
    status['converged'] = not unconverged
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
    if rc != 0:
        lines = [l for l in err.splitlines() if l.strip()]
        module.fail_json(msg=lines[-1] if lines else 'svc exited %d' % rc, rc=rc, cmd=cmd)
    try:
        status = json.loads(out)
    except ValueError:
        module.fail_json(msg='svc status printed no JSON', stdout=out, cmd=cmd)
    module.exit_json(changed=False, ansible_facts=dict(svc=summary(status)))


if __name__ == '__main__':
    main()
