# One way to make the scripts' Python virtualenvs, the same as the tests make them
# (crates/ecom-testkit/src/python_venv.rs: same folder, lock file and marker), so either
# reuses the other's. Uses `log` of the sourcing script.

# ensure_python_venv VENV REQUIREMENTS_FILE: VENV holds exactly the file's requirement lines
# (made afresh, under VENV.lock, when its marker names other ones).
ensure_python_venv() {
  local venv="$1" requirements="$2" wanted
  wanted="$(grep -v '^[[:space:]]*#' "$requirements" | sed '/^[[:space:]]*$/d')"
  mkdir -p "$(dirname "$venv")"
  (
    flock 9
    if [[ "$(cat "$venv/.ecom-requirements" 2>/dev/null)" != "$wanted" ]]; then
      log "installing $(echo $wanted) into $venv"
      rm -rf "$venv"
      python3 -m venv "$venv"
      # shellcheck disable=SC2086 # one requirement per word
      "$venv/bin/pip" install --quiet --disable-pip-version-check $wanted
      printf '%s' "$wanted" >"$venv/.ecom-requirements"
    fi
  ) 9>"$venv.lock"
}
