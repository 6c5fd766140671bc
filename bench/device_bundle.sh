# Binary bundles for the lent GPU machine (sourced by bench/gpu/run_on_device.sh,
# bench/gpu/llamacpp_peer.sh and bench/grpc/run_load_on_device.sh).
#
# The device image has none of the Debian libraries our binaries link, so a
# bundle is a folder of executables built here plus the shared libraries they
# need, packed into one archive that the device call carries.

# bundle_pack DIR [SKIP]: copies into DIR/lib every shared library the
# executables in DIR load, except glibc / libstdc++ / libgcc (the image has
# them) and those whose name matches the extended regex SKIP (e.g.
# 'libcuda|libcublas': the device's own), then packs DIR into DIR/bin.txz.
# xz -9: its 64 MiB window spans several binaries that share most of their
# device code (xz's default 8 MiB window packs ours to ~2.5x the size). The
# archive is written beside DIR under DIR's own name: two bundles packed at
# once must not share a temp file.
bundle_pack() {
  local dir=$1 skip=${2:-} exe=()
  local f
  for f in "$dir"/*; do [[ -f $f && -x $f ]] && exe+=("$f"); done
  mkdir -p "$dir/lib"
  ldd "${exe[@]}" | awk '/=> \//{print $3}' | sort -u |
    grep -Ev "/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*${skip:+|$skip})\.so" |
    while read -r lib; do cp -L "$lib" "$dir/lib/"; done
  (cd "$dir" && XZ_OPT=-9 tar -cJf "$dir.txz.tmp" . && rm -rf ./* && mv "$dir.txz.tmp" bin.txz)
  du -sh "$dir"
}

# bundle_unpack DIR DEST: unpacks DIR/bin.txz (or an older bin.tgz) into DEST
# with python's tarfile (the image may lack xz).
bundle_unpack() {
  mkdir -p "$2" &&
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
      "$(ls "$1"/bin.t?z | head -1)" "$2"
}
