#!/bin/sh
# Bootstrap Mosquitto's dynamic security plugin for pushgod (docs/mqtt.md, "Set up").
#
# Run as root on the broker's host, after copying contrib/mosquitto/pushgod.conf to
# /etc/mosquitto/conf.d/. It
#   1. creates the plugin's file with an admin account, unless it exists, and restarts
#      Mosquitto so that the plugin loads it;
#   2. creates the role and client `pushgod` (pushgod/# and homeassistant/#), and gives
#      the client the `admin` role so that `pushgod device add` can create device
#      accounts;
#   3. creates the role and client `homeassistant` for Home Assistant's MQTT integration;
#   4. prints the [mqtt] section for /etc/pushgod/pushgod.toml.
# Running it again creates only what is missing; it changes a password only when you
# pass one.
#
# Environment (passwords left empty are generated and printed once):
#   ADMIN_USER, ADMIN_PASSWORD   the dynsec admin account (default user: admin). Needed
#                                again on later runs: keep it.
#   PUSHGOD_PASSWORD             password of the `pushgod` account
#   HA_PASSWORD                  password of the `homeassistant` account
#   PUSHGOD_ADMIN_ROLE=no        do not give `pushgod` the admin role (which also lets it
#                                read every topic); the printed config then names the
#                                admin account (admin_username) instead
#   MQTT_HOST, MQTT_PORT         where the broker listens (default: localhost 1883)
#   CTRL_OPTS                    more mosquitto_ctrl options, e.g. "--cafile /etc/ssl/ca.crt"
#   DYNSEC_FILE                  the plugin's file (default as in pushgod.conf)
#   RESTART_CMD                  how to restart Mosquitto (default: systemctl restart mosquitto)
#   ROOT, HA_PREFIX              pushgod's mqtt.root and mqtt.ha_prefix, if you changed them
#
# Example:  sudo ADMIN_PASSWORD='choose-one' sh contrib/mosquitto/setup-dynsec.sh
#
# The passwords appear on mosquitto_ctrl's command line while it runs (visible in ps on
# this host) and travel unencrypted unless CTRL_OPTS sets up TLS: run it on the broker.

set -eu

ADMIN_USER=${ADMIN_USER:-admin}
ADMIN_PASSWORD=${ADMIN_PASSWORD:-}
PUSHGOD_PASSWORD=${PUSHGOD_PASSWORD:-}
HA_PASSWORD=${HA_PASSWORD:-}
PUSHGOD_ADMIN_ROLE=${PUSHGOD_ADMIN_ROLE:-yes}
MQTT_HOST=${MQTT_HOST:-localhost}
MQTT_PORT=${MQTT_PORT:-1883}
CTRL_OPTS=${CTRL_OPTS:-}
DYNSEC_FILE=${DYNSEC_FILE:-/var/lib/mosquitto/dynamic-security.json}
RESTART_CMD=${RESTART_CMD:-systemctl restart mosquitto}
ROOT=${ROOT:-pushgod}
HA_PREFIX=${HA_PREFIX:-homeassistant}

die() {
    printf 'setup-dynsec: %s\n' "$*" >&2
    exit 1
}

new_password() {
    # 24 random bytes as URL-safe base64: 32 characters, nothing to quote.
    head -c 24 /dev/urandom | base64 | tr '+/' '-_'
}

# mosquitto_ctrl 2.0 exits 0 even when a command fails: read what it prints instead.
ctrl() {
    # shellcheck disable=SC2086  # CTRL_OPTS is a list of options
    out=$(mosquitto_ctrl -h "$MQTT_HOST" -p "$MQTT_PORT" $CTRL_OPTS \
        -u "$ADMIN_USER" -P "$ADMIN_PASSWORD" dynsec "$@" 2>&1) || true
    out=$(printf '%s\n' "$out" | grep -v -e '^Warning: You are running mosquitto_ctrl' \
        -e '^This means all of the configuration' -e '^$' || true)
    if printf '%s\n' "$out" | grep -q -e '^[A-Za-z]*: Error: ' -e '^Error: ' \
        -e '^Connection error' -e 'Timed out'; then
        printf 'setup-dynsec: mosquitto_ctrl dynsec %s: %s\n' "$1" "$out" >&2
        return 1
    fi
    [ -z "$out" ] || printf '%s\n' "$out"
}

listed() { # listed listClients|listRoles NAME
    ctrl "$1" | grep -qx -- "$2"
}

broker_answers() {
    # The admin account is always listed: an empty answer means no connection.
    listed listClients "$ADMIN_USER" 2>/dev/null
}

command -v mosquitto_ctrl >/dev/null || die "mosquitto_ctrl not found (apt-get install mosquitto)"

# 1. The plugin's file and its admin account.
if [ ! -e "$DYNSEC_FILE" ]; then
    generated_admin=
    if [ -z "$ADMIN_PASSWORD" ]; then
        ADMIN_PASSWORD=$(new_password)
        generated_admin=yes
    fi
    mosquitto_ctrl dynsec init "$DYNSEC_FILE" "$ADMIN_USER" "$ADMIN_PASSWORD" >/dev/null
    [ -e "$DYNSEC_FILE" ] || die "could not create $DYNSEC_FILE"
    # The broker rewrites the file as user mosquitto; it holds password hashes.
    chown mosquitto:mosquitto "$DYNSEC_FILE"
    chmod 600 "$DYNSEC_FILE"
    echo "Created $DYNSEC_FILE with the admin account '$ADMIN_USER'."
    if [ -n "$generated_admin" ]; then
        echo "Its password (keep it; later runs need ADMIN_PASSWORD): $ADMIN_PASSWORD"
    fi
    # shellcheck disable=SC2086  # a command with its arguments
    [ -z "$RESTART_CMD" ] || $RESTART_CMD
elif [ -z "$ADMIN_PASSWORD" ]; then
    die "$DYNSEC_FILE exists: set ADMIN_PASSWORD to the password of '$ADMIN_USER'"
fi

tries=0
until broker_answers; do
    tries=$((tries + 1))
    [ "$tries" -lt 15 ] || die "no answer from the plugin as '$ADMIN_USER' on $MQTT_HOST:$MQTT_PORT
  (is pushgod.conf in /etc/mosquitto/conf.d, Mosquitto running and ADMIN_PASSWORD right?)"
    sleep 1
done

# 2. and 3. A role with ACLs, and a client holding it.
ensure_role() { # ensure_role NAME ACLTYPE:TOPIC...
    role=$1
    shift
    if listed listRoles "$role"; then
        echo "Role '$role' exists; its ACLs are left as they are."
        return
    fi
    ctrl createRole "$role" >/dev/null
    for acl in "$@"; do
        ctrl addRoleACL "$role" "${acl%%:*}" "${acl#*:}" allow >/dev/null
    done
    echo "Created role '$role'."
}

ensure_client() { # ensure_client NAME PASSWORD ROLE... ; sets $password_note
    client=$1
    password=$2
    shift 2
    if listed listClients "$client"; then
        if [ -n "$password" ]; then
            ctrl setClientPassword "$client" "$password" >/dev/null
            password_note=$password
            echo "Client '$client' exists; its password was changed."
        else
            password_note="<unchanged: the password you set before>"
            echo "Client '$client' exists; its password is unchanged."
        fi
        current=$(ctrl getClient "$client")
    else
        [ -n "$password" ] || password=$(new_password)
        ctrl createClient "$client" -p "$password" >/dev/null
        password_note=$password
        current=
        echo "Created client '$client'."
    fi
    for role in "$@"; do
        # getClient lists roles as "Roles:    name (priority: -1)", one per line.
        if ! printf '%s\n' "$current" | grep -q -e "[: ] $role (priority"; then
            ctrl addClientRole "$client" "$role" >/dev/null
        fi
    done
}

ensure_role pushgod \
    "publishClientSend:$ROOT/#" "publishClientReceive:$ROOT/#" "subscribePattern:$ROOT/#" \
    "publishClientSend:$HA_PREFIX/#" "publishClientReceive:$HA_PREFIX/#" \
    "subscribePattern:$HA_PREFIX/#"
if [ "$PUSHGOD_ADMIN_ROLE" = no ]; then
    ensure_client pushgod "$PUSHGOD_PASSWORD" pushgod
else
    # The admin role lets pushgod create device accounts ($CONTROL/dynamic-security/v1).
    ensure_client pushgod "$PUSHGOD_PASSWORD" pushgod admin
fi
pushgod_note=$password_note

# Home Assistant reads pushgod's topics and the discovery messages, and announces itself
# on homeassistant/status. Widen this role if it also talks to other MQTT devices.
ensure_role homeassistant \
    "subscribePattern:$HA_PREFIX/#" "publishClientReceive:$HA_PREFIX/#" \
    "publishClientSend:$HA_PREFIX/status" \
    "subscribePattern:$ROOT/#" "publishClientReceive:$ROOT/#"
ensure_client homeassistant "$HA_PASSWORD" homeassistant
ha_note=$password_note

# 4. What pushgod needs.
cat <<EOF

Put this in /etc/pushgod/pushgod.toml (readable only by pushgod), then restart pushgod:

[mqtt]
enabled = true
host = "$MQTT_HOST"
port = $MQTT_PORT
username = "pushgod"
password = "$pushgod_note"
EOF
if [ "$PUSHGOD_ADMIN_ROLE" = no ]; then
    cat <<EOF
provisioning = "dynsec"
admin_username = "$ADMIN_USER"
admin_password = "${ADMIN_PASSWORD}"
EOF
else
    echo 'provisioning = "dynsec"'
fi
[ "$ROOT" = pushgod ] || echo "root = \"$ROOT\""
[ "$HA_PREFIX" = homeassistant ] || echo "ha_prefix = \"$HA_PREFIX\""
cat <<EOF
# device_host = "192.168.1.10"   # the address devices use, if not host

Home Assistant (Settings > Devices & services > MQTT): broker $MQTT_HOST, port $MQTT_PORT,
username homeassistant, password $ha_note
EOF
