#!/bin/sh
# Report a NAS's (or any Linux box's) free disk space, temperature and uptime to pushgod
# over MQTT, and open an Event while the disk is low or the temperature high. Meant for
# cron, every few minutes:
#
#   */5 * * * * /usr/local/bin/nas-status.sh
#
# Needs mosquitto_pub (apt-get install mosquitto-clients), df, awk.
#
# Credentials stay off the command line (and out of ps): mosquitto_pub reads default
# options from $XDG_CONFIG_HOME/mosquitto_pub, one "-option value" per line. Create
# /etc/pushgod-device/mosquitto_pub, mode 600, owned by the user cron runs this as:
#
#   -h 192.168.1.10
#   -p 1883
#   -u nas
#   -P <the password `pushgod device add nas --channel ID --create` printed>
#
# The -u line is the device's thing_id too. Settings (environment, all optional):
#   CONFIG_DIR    directory holding that file (default /etc/pushgod-device)
#   STATE_DIR     where the ids of open Events are kept (default /var/lib/pushgod-device)
#   DISK          filesystem to watch (default /)
#   DISK_LOW_GB   open an Event below this many GB free (default 50)
#   TEMP_HIGH_C   open an Event above this temperature (default 70)
#   ROOT          pushgod's mqtt.root (default pushgod)
#
# What pushgod gets (docs/mqtt.md):
#   in/meta   {"attrs": {...names, units and icons for Home Assistant...}}, sent again
#             only when it changes
#   in/state  {"disk_free_gb": 412.3, "disk_used_pct": 58, "temperature_c": 41.5,
#              "uptime_s": 86400}, every run
#   in/event  {"event_id": "disk_low-1767225600-nas", "title": ..., ...} when a threshold
#             is crossed, and the same event_id with "close": true when it is back

set -eu
export LC_ALL=C # a decimal point, not a comma, in the numbers awk prints

CONFIG_DIR=${CONFIG_DIR:-/etc/pushgod-device}
STATE_DIR=${STATE_DIR:-/var/lib/pushgod-device}
DISK=${DISK:-/}
DISK_LOW_GB=${DISK_LOW_GB:-50}
TEMP_HIGH_C=${TEMP_HIGH_C:-70}
ROOT=${ROOT:-pushgod}

options="$CONFIG_DIR/mosquitto_pub"
[ -r "$options" ] || {
    echo "nas-status: cannot read $options (see the top of this script)" >&2
    exit 1
}
thing=$(sed -n 's/^-u[[:space:]][[:space:]]*\([a-z0-9][a-z0-9_-]*\)[[:space:]]*$/\1/p' "$options" | head -n 1)
[ -n "$thing" ] || {
    echo "nas-status: no '-u <thing_id>' line in $options" >&2
    exit 1
}
mkdir -p "$STATE_DIR"

publish() { # publish TOPIC_SUFFIX PAYLOAD: QoS 1, so the broker keeps it for pushgod
    XDG_CONFIG_HOME=$CONFIG_DIR mosquitto_pub -q 1 -t "$ROOT/things/$thing/$1" -m "$2"
}

# Measurements, as JSON numbers.
disk_free_gb=$(df -Pk "$DISK" | awk 'NR == 2 { printf "%.1f", $4 / 1048576 }')
disk_used_pct=$(df -Pk "$DISK" | awk 'NR == 2 { sub("%", "", $5); print $5 + 0 }')
uptime_s=$(awk '{ printf "%d", $1 }' /proc/uptime)
temperature_c=
for zone in /sys/class/thermal/thermal_zone*/temp /sys/class/hwmon/hwmon*/temp1_input; do
    if [ -r "$zone" ]; then
        temperature_c=$(awk '{ printf "%.1f", $1 / 1000 }' "$zone")
        break
    fi
done

# Self-description: Home Assistant shows units, icons and device classes from it.
meta='{"attrs":{'\
'"disk_free_gb":{"name":"Disk free","unit":"GB","device_class":"data_size","icon":"mdi:harddisk"},'\
'"disk_used_pct":{"name":"Disk used","unit":"%","icon":"mdi:harddisk"},'\
'"temperature_c":{"name":"Temperature","unit":"°C","device_class":"temperature"},'\
'"uptime_s":{"name":"Uptime","unit":"s","device_class":"duration"}}}'
if [ "$meta" != "$(cat "$STATE_DIR/$thing.meta" 2>/dev/null || true)" ]; then
    publish in/meta "$meta"
    printf '%s' "$meta" >"$STATE_DIR/$thing.meta"
fi

# State: one JSON object, merged into the Thing's attrs. A key left out keeps its
# value; this box without a temperature sensor sends null, which deletes the key.
state="{\"disk_free_gb\":$disk_free_gb,\"disk_used_pct\":$disk_used_pct,\"uptime_s\":$uptime_s"
state="$state,\"temperature_c\":${temperature_c:-null}}"
publish in/state "$state"

# Events: opened when a threshold is crossed, closed when the value is back. An event_id
# can be used for one Event only, so each new one gets the time in its id.
event() { # event NAME BAD(yes|no) TITLE MESSAGE
    open_file="$STATE_DIR/$thing.$1"
    open=$(cat "$open_file" 2>/dev/null || true)
    if [ "$2" = yes ] && [ -z "$open" ]; then
        id=$(printf '%s' "$1-$(date +%s)-$thing" | cut -c1-64)
        publish in/event "{\"event_id\":\"$id\",\"title\":\"$3\",\"message\":\"$4\",\"severity\":\"high\"}"
        printf '%s\n' "$id" >"$open_file"
    elif [ "$2" = no ] && [ -n "$open" ]; then
        publish in/event "{\"event_id\":\"$open\",\"close\":true,\"message\":\"$4\",\"severity\":\"normal\"}"
        rm -f "$open_file"
    fi
}

below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

if below "$disk_free_gb" "$DISK_LOW_GB"; then low=yes; else low=no; fi
event disk_low "$low" "Disk almost full on $thing" "$disk_free_gb GB free on $DISK"

if [ -n "$temperature_c" ]; then
    if below "$TEMP_HIGH_C" "$temperature_c"; then hot=yes; else hot=no; fi
    event temperature_high "$hot" "$thing is running hot" "$temperature_c °C"
fi
