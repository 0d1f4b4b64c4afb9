# shellcheck shell=bash
# Shared by scripts/demo.sh, scripts/test.sh and .ci/run: source it, do not
# run it. Defines LIBASYNC_ROOT and la_* functions; changes no shell options.

LIBASYNC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# A line that makes a script's output easy to scan.
la_heading() {
  printf '\n==== %s ====\n' "$*"
}

# The Debian packages from scripts/packages.txt, one per line.
la_packages() {
  sed -e 's/#.*//' "$LIBASYNC_ROOT/scripts/packages.txt" | tr -s ' \t' '\n' | sed '/^$/d'
}

# The packages from la_packages that are not installed, one per line.
la_missing_packages() {
  local p
  for p in $(la_packages); do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
      echo "$p"
    fi
  done
}

# apt-get update, then installs every package (needs root). Exported marker
# LIBASYNC_PACKAGES_INSTALLED tells scripts run afterwards not to repeat it.
la_install_packages() {
  local -a pkgs
  mapfile -t pkgs < <(la_packages)
  if [ "$(id -u)" -ne 0 ]; then
    echo "Installing packages needs root. Run as root, or:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${pkgs[*]}" >&2
    return 1
  fi
  la_heading "apt-get install ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update || return 1
  apt-get install -y --no-install-recommends "${pkgs[@]}" || return 1
  export LIBASYNC_PACKAGES_INSTALLED=1
}

# Installs the packages when some are missing; with "--ci", also when
# running as root under CI (CI set) unless they were just installed.
la_ensure_packages() {
  local missing
  missing=$(la_missing_packages)
  if [ -n "$missing" ]; then
    echo "Missing Debian packages: ${missing//$'\n'/ }"
    la_install_packages
  elif [ "${1-}" = --ci ] && [ -n "${CI-}" ] && [ "$(id -u)" -eq 0 ] &&
    [ -z "${LIBASYNC_PACKAGES_INSTALLED-}" ]; then
    la_install_packages
  fi
}

# Configures (or reconfigures) the Meson build directory $1 with the
# remaining arguments as options, then builds it.
la_build() {
  local dir=$1
  shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$LIBASYNC_ROOT" "$@" || return 1
  else
    meson setup "$dir" "$LIBASYNC_ROOT" "$@" || return 1
  fi
  ninja -C "$dir" || return 1
}

# Builds build/, the main build tree (benchmarks too once bench/ has them).
la_build_main() {
  local -a opts=()
  if [ -f "$LIBASYNC_ROOT/bench/meson.build" ]; then
    opts+=(-Dbench=true)
  fi
  la_build "$LIBASYNC_ROOT/build" ${opts[@]+"${opts[@]}"}
}
