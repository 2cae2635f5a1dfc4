# bash completion for svc(8).  Installed by `make install` as
# $(PREFIX)/share/bash-completion/completions/svc; or: source it.
#
# What can be completed comes from svc itself, so it never drifts from the
# command table: `svc __complete commands`, `svc __complete options CMD`
# (an option taking a value ends in '='), and `svc --root DIR __complete ids`
# (the fix ids of the ledger of that root, read without changing anything).
# Self-contained: it needs no bash-completion helpers.

_svc() {
	# The line up to the cursor, split on blanks only: bash's own split also
	# breaks at '=' and ':' (--root=DIR, /hotpatch:enable).
	local line=${COMP_LINE:0:COMP_POINT}
	local -a w
	read -ra w <<<"$line"
	[[ $line == *[[:space:]] || ${#w[@]} -eq 0 ]] && w+=("")
	local cur=${w[-1]} n=$((${#w[@]} - 1))
	local svc=${w[0]:-svc}
	[[ $svc == */* && -x $svc ]] || svc=svc

	local -a root=() words=()
	local cmd="" i x valopts=" --root= --wait= "
	for ((i = 1; i < n; i++)); do
		x=${w[i]}
		case $x in
		--root=*) root=("$x") ;;
		--root) root=(--root "${w[i + 1]}"); ((i++)) ;;
		--*=*) ;;
		-*)
			[[ $valopts == *" $x= "* ]] && ((i++))
			;;
		*)
			if [[ -z $cmd ]]; then
				cmd=$x
				valopts=" $("$svc" __complete options "$cmd" 2>/dev/null | tr '\n' ' ') "
			else
				words+=("$x")
			fi
			;;
		esac
	done

	local -a cand=()
	local prev=${w[n - 1]:-}
	if ((n > 1)) && [[ $prev == -* && $prev != *=* && $valopts == *" $prev= "* ]]; then
		# the value of an option: a directory for --root, a number for --wait, else a file
		case $prev in
		--root) cand=($(compgen -d -- "$cur")) ;;
		--wait | --seq | --workers | --pid | --id | --series | --summary) ;;
		*) cand=($(compgen -f -- "$cur")) ;;
		esac
	elif [[ $cur == --*=* ]]; then
		case $cur in
		--root=*) cand=($(compgen -d -P "${cur%%=*}=" -- "${cur#*=}")) ;;
		--wait=*) ;;
		*) cand=($(compgen -f -P "${cur%%=*}=" -- "${cur#*=}")) ;;
		esac
	elif [[ $cur == -* ]]; then
		local -a opts=()
		if [[ -n $cmd ]]; then
			opts=($("$svc" __complete options "$cmd" 2>/dev/null))
		else
			opts=(--root= --wait= --quiet --json --help --version)
		fi
		cand=($(compgen -W "${opts[*]}" -- "$cur"))
		# an option taking a value: complete it with its '=' and no space
		[[ ${#cand[@]} -eq 1 && ${cand[0]} == *= ]] && { compopt -o nospace 2>/dev/null || true; }
		local k
		for k in "${!cand[@]}"; do [[ ${cand[k]} == *= && ${#cand[@]} -gt 1 ]] && cand[k]=${cand[k]%=}; done
	elif [[ -z $cmd ]]; then
		cand=($(compgen -W "$("$svc" __complete commands 2>/dev/null)" -- "$cur"))
	else
		case $cmd in
		install)
			cand=($(compgen -W "/hotpatch:enable /hotpatch:disable /quiet" -- "$cur"))
			((${#words[@]} == 0)) && [[ $cur != /hotpatch* ]] &&
				cand+=($(compgen -f -X '!*.hfx' -- "$cur") $(compgen -d -- "$cur"))
			;;
		rollback)
			((${#words[@]} == 0)) &&
				cand=($(compgen -W "$("$svc" "${root[@]}" __complete ids 2>/dev/null)" -- "$cur"))
			;;
		help)
			((${#words[@]} == 0)) &&
				cand=($(compgen -W "$("$svc" __complete commands 2>/dev/null)" -- "$cur"))
			;;
		hotpatch)
			case "${words[0]:-}" in
			"") cand=($(compgen -W "apply revert list" -- "$cur")) ;;
			apply) ((${#words[@]} == 1)) &&
				cand=($(compgen -f -X '!*.hp' -- "$cur") $(compgen -d -- "$cur")) ;;
			revert) ((${#words[@]} == 1)) &&
				cand=($(compgen -W "$("$svc" "${root[@]}" __complete ids 2>/dev/null)" -- "$cur")) ;;
			esac
			;;
		inspect)
			((${#words[@]} == 0)) && cand=($(compgen -f -- "$cur"))
			;;
		esac
	fi

	# bash replaces only the part of the word after its last '=' or ':'
	local cut=${cur%"${cur##*[=:]}"}
	COMPREPLY=("${cand[@]#"$cut"}")
}
complete -F _svc svc
