# -*- coding: utf-8 -*-
# Action plugin of svc_fix: the package is a file on the controller; copy it
# into the task's remote temp directory, run the module on that copy, and
# remove it (with the temp directory) afterwards.  With remote_src, or a
# rollback by id, nothing is copied.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleError, AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = dict()
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        args = self._task.args.copy()
        package = args.get('package')
        try:
            if package and not boolean(args.get('remote_src', False), strict=False):
                try:
                    local = self._loader.get_real_file(self._find_needle('files', package))
                except AnsibleError as e:
                    raise AnsibleActionFail(to_text(e))
                remote = self._connection._shell.join_path(self._connection._shell.tmpdir,
                                                           'package.hfx')
                self._transfer_file(local, remote)
                self._fixup_perms2((self._connection._shell.tmpdir, remote))
                args['package'] = remote
                args['remote_src'] = True
            result.update(self._execute_module(module_name='svc.fleet.svc_fix',
                                               module_args=args, task_vars=task_vars))
        except AnsibleActionFail as e:
            result.update(e.result)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
