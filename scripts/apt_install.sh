#!/usr/bin/env bash
# apt_install TAG PACKAGE... — install Debian packages, as root or through `sudo -n`, waiting
# for another apt/dpkg that holds the lock. Sourced by the ensure_* scripts.

apt_install() {
    local tag="$1"
    shift
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$tag: missing $*, and no apt-get to install it; install it yourself." >&2
        return 1
    fi
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo -n)
        else
            echo "$tag: missing $*; run as root: apt-get install -y $*" >&2
            return 1
        fi
    fi
    echo "$tag: installing $* from Debian (apt-get)..."
    export DEBIAN_FRONTEND=noninteractive
    local apt_opts=(-q -o DPkg::Lock::Timeout=900 -o Acquire::Retries=3)
    local attempt
    for attempt in 1 2 3; do
        if "${sudo[@]}" apt-get "${apt_opts[@]}" update; then
            break
        fi
        [[ $attempt -lt 3 ]] || { echo "$tag: apt-get update failed" >&2; return 1; }
        sleep 10
    done
    "${sudo[@]}" apt-get "${apt_opts[@]}" install -y "$@" </dev/null
}
