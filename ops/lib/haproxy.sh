# Sourced (after ops/lib/setup.sh, which it sources itself when needed): HAProxy, the load balancer the replica test
# (Tests/TollgateServerTests/ReplicaTests.swift) puts in front of two gateways on one database, as
# ops/examples/replicas/haproxy.cfg shows. Debian's `haproxy` package, by apt-get when missing. The test starts its
# own haproxy on free loopback ports with a configuration of its own; the package's service (and its
# /etc/haproxy/haproxy.cfg) is never used.
# `tollgate_haproxy` exports
#   TOLLGATE_HAPROXY   the binary, /usr/sbin/haproxy unless already set
# Idempotent: a warm call costs a few milliseconds and prints nothing.

if ! declare -F tollgate_need_packages >/dev/null; then
    # shellcheck source=setup.sh
    source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
fi

tollgate_haproxy() {
    tollgate_need_packages haproxy
    export TOLLGATE_HAPROXY="${TOLLGATE_HAPROXY:-/usr/sbin/haproxy}"
    if [ ! -x "$TOLLGATE_HAPROXY" ]; then
        echo "ops: no haproxy at $TOLLGATE_HAPROXY (Debian's haproxy package, or set TOLLGATE_HAPROXY)" >&2
        return 1
    fi
}
