#!/usr/bin/env bash
# Prepares containerd on Debian for the node agent, with no registry:
#  - installs containerd, runc, busybox-static and the CNI plugins when missing;
#  - writes a containerd config: a local pause image, restrict_oom_score_adj
#    (root without CAP_SYS_RESOURCE cannot lower oom_score_adj), CNI from
#    /usr/lib/cni, and a bridge network (10.88.0.0/16) so pods get their own IP;
#  - starts containerd (systemd when it runs, else in the background) and
#    restarts it when the config changed;
#  - builds OCI images from /bin/busybox and imports them:
#      capstan.local/pause:1     the sandbox image (sleep infinity)
#      capstan.local/busybox:1   busybox with its applets, Cmd sh
# Idempotent; run as root.
set -euo pipefail

SOCKET=/run/containerd/containerd.sock
CONFIG=/etc/containerd/config.toml
CNI_CONFIG=/etc/cni/net.d/10-capstan-bridge.conflist
STATE=/var/lib/capstan-containerd
LOG=/var/log/capstan-containerd.log
PAUSE_IMAGE=capstan.local/pause:1
BUSYBOX_IMAGE=capstan.local/busybox:1

[ "$(id -u)" -eq 0 ] || { echo "containerd-setup.sh: run as root" >&2; exit 1; }

install_packages() {
  local need=()
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 || need+=(busybox-static)
  [ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null || need+=(iptables)
  if [ "${#need[@]}" -gt 0 ]; then
    echo "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

# Writes $2 to $1 when it differs; returns 0 when the file changed.
write_if_changed() {
  local path="$1" content="$2"
  if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then
    return 1
  fi
  mkdir -p "$(dirname "$path")"
  printf '%s\n' "$content" >"$path.tmp"
  mv "$path.tmp" "$path"
  return 0
}

write_configs() {
  local changed=1
  if write_if_changed "$CONFIG" "# Written by capstan's ops/deploy/containerd-setup.sh.
version = 2

[plugins.\"io.containerd.grpc.v1.cri\"]
  sandbox_image = \"$PAUSE_IMAGE\"
  restrict_oom_score_adj = true
  [plugins.\"io.containerd.grpc.v1.cri\".cni]
    bin_dir = \"/usr/lib/cni\"
    conf_dir = \"/etc/cni/net.d\""; then
    changed=0
  fi
  # Pod-to-pod and host-to-pod traffic over a bridge; no masquerading.
  write_if_changed "$CNI_CONFIG" '{"cniVersion": "1.0.0", "name": "capstan", "plugins": [{"type": "bridge",
 "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
 {"type": "portmap", "capabilities": {"portMappings": true}}]}' || true
  return "$changed"
}

running() {
  ctr --address "$SOCKET" version >/dev/null 2>&1
}

start_containerd() {
  local restart="$1"
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    if [ "$restart" = yes ]; then systemctl restart containerd; else systemctl start containerd; fi
  else
    if [ "$restart" = yes ] || ! running; then
      if [ -f "$STATE/containerd.pid" ]; then
        kill "$(cat "$STATE/containerd.pid")" 2>/dev/null || true
      fi
      pkill -x containerd 2>/dev/null || true
      for _ in $(seq 1 50); do pgrep -x containerd >/dev/null || break; sleep 0.1; done
      mkdir -p "$STATE"
      nohup containerd --config "$CONFIG" >>"$LOG" 2>&1 &
      echo $! >"$STATE/containerd.pid"
    fi
  fi
  for _ in $(seq 1 100); do
    running && return 0
    sleep 0.1
  done
  echo "containerd did not come up; its log: $LOG" >&2
  tail -20 "$LOG" >&2 || true
  exit 1
}

# build_image NAME ENTRYPOINT_JSON CMD_JSON: an OCI image tar with one layer,
# /bin/busybox and a link for each of its applets, imported into containerd.
build_image() {
  local name="$1" entrypoint="$2" cmd="$3"
  if ctr -n k8s.io images ls -q | grep -qx "$name"; then
    return
  fi
  local work
  work="$(mktemp -d)"
  mkdir -p "$work/rootfs/bin" "$work/rootfs/tmp" "$work/rootfs/etc" "$work/oci/blobs/sha256"
  cp /bin/busybox "$work/rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$work/rootfs/bin/$applet"
  done
  echo "root:x:0:0:root:/root:/bin/sh" >"$work/rootfs/etc/passwd"
  echo "root:x:0:" >"$work/rootfs/etc/group"
  chmod 1777 "$work/rootfs/tmp"
  tar --sort=name --mtime='2024-01-01 00:00Z' --owner=0 --group=0 --numeric-owner \
    -C "$work/rootfs" -cf "$work/layer.tar" .
  local layer layer_size config config_size manifest manifest_size
  layer="$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
  layer_size="$(stat -c %s "$work/layer.tar")"
  mv "$work/layer.tar" "$work/oci/blobs/sha256/$layer"
  printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/bin"],"Entrypoint":%s,"Cmd":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$(dpkg --print-architecture)" "$entrypoint" "$cmd" "$layer" >"$work/config.json"
  config="$(sha256sum "$work/config.json" | cut -d' ' -f1)"
  config_size="$(stat -c %s "$work/config.json")"
  mv "$work/config.json" "$work/oci/blobs/sha256/$config"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config" "$config_size" "$layer" "$layer_size" >"$work/manifest.json"
  manifest="$(sha256sum "$work/manifest.json" | cut -d' ' -f1)"
  manifest_size="$(stat -c %s "$work/manifest.json")"
  mv "$work/manifest.json" "$work/oci/blobs/sha256/$manifest"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"1"}}]}' \
    "$manifest" "$manifest_size" "$name" >"$work/oci/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"
  tar -C "$work/oci" -cf "$work/image.tar" .
  ctr -n k8s.io images import "$work/image.tar" >/dev/null
  rm -rf "$work"
  echo "imported $name"
}

install_packages
restart=no
if write_configs; then restart=yes; fi
if ! running; then restart=yes; fi
start_containerd "$restart"
build_image "$PAUSE_IMAGE" '["/bin/sleep","infinity"]' 'null'
build_image "$BUSYBOX_IMAGE" 'null' '["sh"]'
echo "containerd ready on $SOCKET ($(ctr version 2>/dev/null | awk '/Version:/ {print $2; exit}'))"
