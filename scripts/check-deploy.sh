#!/usr/bin/env bash
# Validates the deployment files without a cluster or a Docker daemon:
#   - every YAML file under deploy/ parses (PyYAML; installed into a
#     temporary venv if missing);
#   - the Kubernetes manifests (deploy/k8s) have the required kinds, and every
#     container has liveness/readiness probes, resource limits and the
#     restricted security context; selectors, Secret keys, the SQLite
#     single replica and the NetworkPolicy ports are consistent;
#   - deploy/compose.yaml: only the proxy publishes ports, the replicas are
#     hardened, share their secrets and wait for a healthy database; every
#     variable it uses is in deploy/.env.example, which holds placeholders only;
#   - deploy/Caddyfile proxies to both replicas with /readyz health checks;
#   - deploy/Dockerfile: every path it copies from the build context exists
#     and is not excluded by .dockerignore, everything the crate compiles in
#     (include_str!, sqlx::migrate!) is copied into the build stage, and the
#     runtime settings (non-root, entrypoint, env, port) are there.
# Then, when the tools are installed (skipped with a message otherwise):
# `kubectl kustomize`, `kubeconform`, `docker compose config -q`,
# `caddy validate`, `hadolint`.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }
skip() { printf 'SKIP %s\n' "$*"; }

# ---------------------------------------------------------------- PyYAML
PY=python3
command -v "$PY" >/dev/null || { echo "python3 is required" >&2; exit 1; }
if ! "$PY" -c 'import yaml' 2>/dev/null || [ -n "${CHECK_DEPLOY_FORCE_VENV:-}" ]; then
    say "PyYAML missing: installing it into a temporary venv"
    venv="$(mktemp -d)"
    trap 'rm -rf "$venv"' EXIT
    if "$PY" -m venv "$venv" >/dev/null 2>&1; then
        "$venv/bin/python" -m pip install -q --disable-pip-version-check pyyaml
        PY="$venv/bin/python"
    else
        "$PY" -m pip install -q --user --disable-pip-version-check pyyaml
    fi
    "$PY" -c 'import yaml'
fi

# ---------------------------------------------------------------- static checks
say "static checks (YAML, Kubernetes, compose, Caddyfile, Dockerfile)"
"$PY" - <<'PYEOF'
import fnmatch, glob, os, re, sys
import yaml

failures = []
def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)
    return ok

# --- every YAML file parses ------------------------------------------------
docs_by_file = {}
yaml_files = sorted(glob.glob("deploy/**/*.yaml", recursive=True) + glob.glob("deploy/**/*.yml", recursive=True))
check(len(yaml_files) > 0, "YAML files found under deploy/")
for f in yaml_files:
    try:
        with open(f) as fh:
            docs_by_file[f] = [d for d in yaml.safe_load_all(fh) if d is not None]
        check(True, f"{f} parses")
    except yaml.YAMLError as e:
        check(False, f"{f} parses: {e}")

# --- Kubernetes --------------------------------------------------------------
objects = []  # (file, doc)
for f, docs in docs_by_file.items():
    if not f.startswith("deploy/k8s/"):
        continue
    for d in docs:
        if isinstance(d, dict) and d.get("kind") == "Kustomization":
            for r in d.get("resources", []):
                check(os.path.exists(os.path.join(os.path.dirname(f), r)), f"{f}: resource {r} exists")
            continue
        objects.append((f, d))
kinds = {}
for f, d in objects:
    kinds.setdefault(d.get("kind"), []).append((f, d))
for k in ["Namespace", "ServiceAccount", "Secret", "Service", "NetworkPolicy",
          "Deployment", "StatefulSet", "PodDisruptionBudget"]:
    check(k in kinds, f"k8s: a {k} exists")

NS = "purser"
for f, d in objects:
    md = d.get("metadata", {})
    if d.get("kind") != "Namespace":
        check(md.get("namespace") == NS, f"{f}: {d.get('kind')}/{md.get('name')} is in namespace {NS}")

def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

secret_keys = set()
for f, s in kinds.get("Secret", []):
    data = s.get("stringData", {}) or {}
    secret_keys |= set(data)
    for k, v in data.items():
        check("CHANGE-ME" in str(v), f"{f}: Secret value {k} is a placeholder (CHANGE-ME)")
    check(not s.get("data"), f"{f}: no base64 `data` (only placeholders in stringData)")
check({"PURSER_ADMIN_TOKEN", "PURSER_ENCRYPTION_KEY", "PURSER_DATABASE_URL"} <= secret_keys,
      "k8s: Secret holds PURSER_ADMIN_TOKEN, PURSER_ENCRYPTION_KEY, PURSER_DATABASE_URL")

def env_of(c):
    return {e["name"]: e for e in c.get("env", []) or []}

pod_labels = {}
for kind in ["Deployment", "StatefulSet"]:
    for f, w in kinds.get(kind, []):
        name = f"{f}: {kind}/{w['metadata']['name']}"
        spec = w["spec"]
        tpl = spec["template"]
        labels = tpl.get("metadata", {}).get("labels", {})
        pod_labels[(kind, w["metadata"]["name"])] = labels
        check(labels_match(spec["selector"].get("matchLabels"), labels), f"{name}: selector matches pod labels")
        pod = tpl["spec"]
        psc = pod.get("securityContext", {}) or {}
        check(pod.get("automountServiceAccountToken") is False, f"{name}: no service account token mounted")
        containers = (pod.get("initContainers") or []) + pod.get("containers", [])
        check(len(containers) > 0, f"{name}: has containers")
        for c in containers:
            cn = f"{name} container {c['name']}"
            sc = c.get("securityContext", {}) or {}
            lp, rp = c.get("livenessProbe") or {}, c.get("readinessProbe") or {}
            check(lp.get("httpGet", {}).get("path") == "/healthz", f"{cn}: livenessProbe GET /healthz")
            check(rp.get("httpGet", {}).get("path") == "/readyz", f"{cn}: readinessProbe GET /readyz")
            res = c.get("resources", {}) or {}
            check({"cpu", "memory"} <= set(res.get("limits", {}) or {}), f"{cn}: cpu and memory limits")
            check({"cpu", "memory"} <= set(res.get("requests", {}) or {}), f"{cn}: cpu and memory requests")
            check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{cn}: runAsNonRoot")
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            check(uid is not None and uid != 0, f"{cn}: runs as a non-zero uid")
            check(sc.get("readOnlyRootFilesystem") is True, f"{cn}: readOnlyRootFilesystem")
            check(sc.get("allowPrivilegeEscalation") is False, f"{cn}: allowPrivilegeEscalation false")
            check("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), f"{cn}: drops ALL capabilities")
            check(not sc.get("privileged"), f"{cn}: not privileged")
            seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            check(seccomp == "RuntimeDefault", f"{cn}: seccomp RuntimeDefault")
            check(any(p.get("containerPort") == 8080 for p in c.get("ports", [])), f"{cn}: containerPort 8080")
            env = env_of(c)
            check(env.get("PURSER_LISTEN", {}).get("value", "0.0.0.0:8080") == "0.0.0.0:8080",
                  f"{cn}: listens on 0.0.0.0:8080")
            for e in env.values():
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    check(ref.get("key") in secret_keys, f"{cn}: secret key {ref.get('key')} exists in the Secret")
            for k in ["PURSER_ADMIN_TOKEN", "PURSER_ENCRYPTION_KEY"]:
                check("secretKeyRef" in (env.get(k, {}).get("valueFrom") or {}), f"{cn}: {k} from the Secret")
            mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
            check("/etc/purser/policies" in mounts and mounts["/etc/purser/policies"].get("readOnly") is True,
                  f"{cn}: policies mounted read-only at /etc/purser/policies")
            if kind == "Deployment":
                db = env.get("PURSER_DATABASE_URL", {})
                check("secretKeyRef" in (db.get("valueFrom") or {}), f"{cn}: PostgreSQL URL from the Secret")
            else:
                check(env.get("PURSER_DATABASE_URL", {}).get("value", "").startswith("sqlite:///var/lib/purser/"),
                      f"{cn}: SQLite file under /var/lib/purser")
                vct = [v["metadata"]["name"] for v in spec.get("volumeClaimTemplates", [])]
                check(any(m.get("name") in vct for p, m in mounts.items() if p == "/var/lib/purser"),
                      f"{cn}: volumeClaimTemplate mounted at /var/lib/purser")
        if kind == "Deployment":
            check((spec.get("replicas") or 1) >= 2, f"{name}: at least 2 replicas (PostgreSQL mode)")
        else:
            check(spec.get("replicas") == 1, f"{name}: exactly 1 replica (SQLite mode)")
            check("exactly one replica" in open(f).read().lower(), f"{f}: says SQLite mode runs exactly one replica")

for f, s in kinds.get("Service", []):
    sel = s["spec"].get("selector", {})
    for key, labels in pod_labels.items():
        check(labels_match(sel, labels), f"{f}: Service/{s['metadata']['name']} selects {key[0]}/{key[1]} pods")
for f, p in kinds.get("PodDisruptionBudget", []):
    sel = p["spec"]["selector"].get("matchLabels", {})
    deps = [l for (k, _), l in pod_labels.items() if k == "Deployment"]
    check(any(labels_match(sel, l) for l in deps), f"{f}: PodDisruptionBudget selects the Deployment's pods")
    check("minAvailable" in p["spec"] or "maxUnavailable" in p["spec"], f"{f}: PodDisruptionBudget has a budget")
for f, n in kinds.get("NetworkPolicy", []):
    spec = n["spec"]
    for key, labels in pod_labels.items():
        check(labels_match(spec["podSelector"].get("matchLabels"), labels), f"{f}: NetworkPolicy covers {key[0]} pods")
    check(set(spec.get("policyTypes", [])) == {"Ingress", "Egress"}, f"{f}: NetworkPolicy restricts ingress and egress")
    ing_ports = {(p.get("protocol", "TCP"), p.get("port")) for r in spec.get("ingress", []) for p in r.get("ports", [])}
    check(ing_ports == {("TCP", 8080)}, f"{f}: ingress only on TCP 8080 (got {sorted(ing_ports)})")
    check(all(r.get("from") for r in spec.get("ingress", [])), f"{f}: every ingress rule names its sources")
    eg_ports = {(p.get("protocol", "TCP"), p.get("port")) for r in spec.get("egress", []) for p in r.get("ports", [])}
    check(all(r.get("ports") for r in spec.get("egress", [])), f"{f}: every egress rule is limited to ports")
    check(eg_ports == {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 443)},
          f"{f}: egress only DNS 53, PostgreSQL 5432, HTTPS 443 (got {sorted(eg_ports)})")
for f, n in kinds.get("Namespace", []):
    check(n["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") == "restricted",
          f"{f}: namespace enforces the restricted Pod Security Standard")

# --- compose ---------------------------------------------------------------
compose_file = "deploy/compose.yaml"
compose_text = open(compose_file).read()
compose = (docs_by_file.get(compose_file) or [{}])[0]
services = compose.get("services", {})
check({"db", "purser-1", "purser-2", "proxy"} <= set(services), "compose: services db, purser-1, purser-2, proxy")
for name, s in services.items():
    if name != "proxy":
        check("ports" not in s, f"compose: {name} publishes no ports")
proxy = services.get("proxy", {})
published = {str(p).split(":")[-2] if ":" in str(p) else str(p) for p in proxy.get("ports", [])}
check(published == {"80", "443"}, f"compose: proxy publishes 80 and 443 only (got {sorted(published)})")
db = services.get("db", {})
check(str(db.get("image", "")).startswith("postgres:16"), "compose: db is PostgreSQL 16")
check("pg_isready" in str(db.get("healthcheck", {}).get("test")), "compose: db healthcheck uses pg_isready")
named_volumes = set(compose.get("volumes", {}) or {})
check(any(str(v).split(":")[0] in named_volumes and str(v).split(":")[1] == "/var/lib/postgresql/data"
          for v in db.get("volumes", [])), "compose: db data on a named volume")
envs = {}
for name in ["purser-1", "purser-2"]:
    s = services.get(name, {})
    check(s.get("read_only") is True, f"compose: {name} read-only root filesystem")
    check("ALL" in (s.get("cap_drop") or []) and not s.get("cap_add"), f"compose: {name} drops ALL capabilities")
    check("no-new-privileges:true" in (s.get("security_opt") or []), f"compose: {name} no-new-privileges")
    lim = ((s.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    check({"cpus", "memory"} <= set(lim), f"compose: {name} cpu and memory limits")
    check(((s.get("depends_on") or {}).get("db") or {}).get("condition") == "service_healthy",
          f"compose: {name} waits for a healthy db")
    env = s.get("environment") or {}
    envs[name] = env
    check(str(env.get("PURSER_DATABASE_URL", "")).startswith("postgres://") and "@db:5432/" in str(env.get("PURSER_DATABASE_URL")),
          f"compose: {name} uses PostgreSQL on the db service")
    check(str(env.get("PURSER_LISTEN")) == "0.0.0.0:8080", f"compose: {name} listens on 0.0.0.0:8080")
for k in ["PURSER_ADMIN_TOKEN", "PURSER_ENCRYPTION_KEY", "PURSER_DATABASE_URL"]:
    a, b = envs.get("purser-1", {}).get(k), envs.get("purser-2", {}).get(k)
    check(a is not None and a == b and "${" in str(a), f"compose: both replicas take the same {k} from the env file")
build = services.get("purser-1", {}).get("build") or {}
ctx = os.path.normpath(os.path.join("deploy", build.get("context", ".")))
check(ctx == ".", "compose: build context is the repository root")
check(os.path.exists(os.path.join(ctx, build.get("dockerfile", "Dockerfile"))), "compose: the Dockerfile it builds exists")
for v in proxy.get("volumes", []):
    src = str(v).split(":")[0]
    if src.startswith("."):
        check(os.path.exists(os.path.join("deploy", src)), f"compose: proxy mount {src} exists")

env_example = {}
for line in open("deploy/.env.example"):
    line = line.strip()
    if line and not line.startswith("#") and "=" in line:
        k, v = line.split("=", 1)
        env_example[k] = v
used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-[^}]*)?\}", compose_text))
required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", compose_text))
for v in sorted(used | required):
    check(v in env_example, f"deploy/.env.example defines {v}")
for k in ["PURSER_ADMIN_TOKEN", "PURSER_ENCRYPTION_KEY", "POSTGRES_PASSWORD"]:
    v = env_example.get(k, "")
    check(v == "CHANGE-ME", f"deploy/.env.example: {k} is the placeholder CHANGE-ME, not a secret")
check(not re.search(r"psr_[a-z]+_[A-Za-z0-9_-]{20,}", open("deploy/.env.example").read()),
      "deploy/.env.example holds no real-looking token")

# --- Caddyfile -------------------------------------------------------------
caddy = open("deploy/Caddyfile").read()
caddy_code = "\n".join(l.split("#", 1)[0] for l in caddy.splitlines())
rp = re.search(r"reverse_proxy\s+([^{\n]*)\{", caddy_code)
upstreams = set(rp.group(1).split()) if rp else set()
check(upstreams == {"purser-1:8080", "purser-2:8080"}, f"Caddyfile: reverse_proxy to both replicas (got {sorted(upstreams)})")
check(re.search(r"^\s*health_uri\s+/readyz\s*$", caddy_code, re.M) is not None, "Caddyfile: active health checks on /readyz")
check(re.search(r"^\s*tls\s+internal\s*$", caddy_code, re.M) is not None, "Caddyfile: tls internal (local)")
check(re.search(r"^\s*redir\s+https://", caddy_code, re.M) is not None, "Caddyfile: port 80 redirects to https")
check("X-Forwarded-For" in caddy, "Caddyfile: documents X-Forwarded-For")

# --- Dockerfile and .dockerignore ----------------------------------------
def dockerfile_instructions(path):
    out, buf = [], ""
    for raw in open(path):
        line = raw.rstrip("\n")
        if not buf and (line.strip().startswith("#") or not line.strip()):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        out.append(buf.strip())
        buf = ""
    return out

def ignore_patterns(path=".dockerignore"):
    pats = []
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            neg = line.startswith("!")
            p = line[1:] if neg else line
            p = os.path.normpath(p.strip("/")) if p.strip("/") else "."
            rx = ""
            i = 0
            while i < len(p):
                if p.startswith("**", i):
                    rx += ".*"; i += 2
                    if i < len(p) and p[i] == "/":
                        rx = rx[:-2] + "(.*/)?"; i += 1
                elif p[i] == "*":
                    rx += "[^/]*"; i += 1
                elif p[i] == "?":
                    rx += "[^/]"; i += 1
                else:
                    rx += re.escape(p[i]); i += 1
            pats.append((re.compile("^" + rx + "$"), neg))
    return pats

PATS = ignore_patterns()
def ignored(path):
    path = os.path.normpath(path)
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for rx, neg in PATS:
        if any(rx.match(c) for c in candidates):
            excluded = not neg
    return excluded

dockerfile = "deploy/Dockerfile"
instrs = dockerfile_instructions(dockerfile)
stage_copies = {}  # stage index -> list of context sources copied into it
stage = -1
for ins in instrs:
    op, _, rest = ins.partition(" ")
    op = op.upper()
    if op == "FROM":
        stage += 1
        stage_copies[stage] = []
    if op in ("COPY", "ADD"):
        args = rest.split()
        flags = [a for a in args if a.startswith("--")]
        paths = [a for a in args if not a.startswith("--")]
        if rest.strip().startswith("["):
            continue
        if any(fl.startswith("--from=") for fl in flags):
            continue
        for src in paths[:-1]:
            matches = glob.glob(src)
            check(bool(matches), f"Dockerfile: COPY source {src} exists in the build context")
            for m in matches:
                check(not ignored(m), f"Dockerfile: COPY source {m} is not excluded by .dockerignore")
            stage_copies[stage].append(src.rstrip("/"))
text = open(dockerfile).read()
check(stage >= 1, "Dockerfile: multi-stage")
check("cargo build --release --locked" in text, "Dockerfile: cargo build --release --locked")
final_user = [i.split(None, 1)[1] for i in instrs if i.upper().startswith("USER ")]
check(bool(final_user) and final_user[-1].split(":")[0] not in ("0", "root"), "Dockerfile: runs as a non-root user")
for needle in ['ENTRYPOINT ["/usr/local/bin/purser"]', 'CMD ["serve"]', "EXPOSE 8080",
               "PURSER_LISTEN=0.0.0.0:8080", "PURSER_POLICIES=/etc/purser/policies", "PURSER_LOG_FORMAT=json",
               "PURSER_DATABASE_URL=sqlite:///var/lib/purser/purser.db", "/var/lib/purser"]:
    check(needle in text, f"Dockerfile: has {needle}")
check(os.path.isdir("policies") and glob.glob("policies/*.toml"), "policies/*.toml exist for the image")

# What the crate compiles in must be copied into the build stage (stage 0),
# or the image build fails although `cargo build` works in a checkout.
build_copied = stage_copies.get(0, [])
def copied(path):
    path = os.path.normpath(path)
    return any(path == c or path.startswith(c + "/") for c in build_copied)
for src in glob.glob("src/**/*.rs", recursive=True):
    if os.path.basename(src) == "tests.rs" or "/tests/" in src:
        continue  # test-only modules are not compiled by `cargo build`
    code = open(src).read()
    for m in re.finditer(r'include_(?:str|bytes)!\(\s*"([^"]+)"', code):
        target = os.path.normpath(os.path.join(os.path.dirname(src), m.group(1)))
        check(copied(target), f"Dockerfile: {target} (included by {src}) is copied into the build stage")
    for m in re.finditer(r'migrate!\(\s*"([^"]+)"', code):
        target = os.path.normpath(m.group(1))
        check(copied(target), f"Dockerfile: {target} (migrations of {src}) is copied into the build stage")
for f in ["Cargo.toml", "Cargo.lock"]:
    check(copied(f) and not ignored(f), f"Dockerfile: {f} copied into the build stage")
for m in re.finditer(r'\[\[bench\]\]\s*name\s*=\s*"([^"]+)"', open("Cargo.toml").read()):
    check(copied(f"benches/{m.group(1)}.rs"), f"Dockerfile: bench target benches/{m.group(1)}.rs copied (Cargo.toml names it)")
for secret_path in [".env", "deploy/.env", "purser.db", "purser.db.key", "target/release/purser", ".git/config"]:
    check(ignored(secret_path), f".dockerignore excludes {secret_path}")

print()
if failures:
    print(f"{len(failures)} check(s) failed:")
    for f in failures:
        print("  - " + f)
    sys.exit(1)
print("static checks passed")
PYEOF

say "deploy/.env is ignored by git"
if git rev-parse --git-dir >/dev/null 2>&1; then
    git check-ignore -q deploy/.env || { echo "FAIL deploy/.env is not ignored by git" >&2; exit 1; }
    echo "ok   deploy/.env is ignored"
else
    skip "not a git checkout"
fi

# ---------------------------------------------------------------- optional tools
say "kustomize builds"
if command -v kubectl >/dev/null 2>&1; then
    for mode in postgres sqlite; do
        out="$(kubectl kustomize "deploy/k8s/$mode")"
        printf '%s\n' "$out" | "$PY" -c 'import sys, yaml; docs = [d for d in yaml.safe_load_all(sys.stdin) if d]; print("ok   deploy/k8s/%s renders %d objects" % (sys.argv[1], len(docs)))' "$mode"
        if command -v kubeconform >/dev/null 2>&1; then
            printf '%s\n' "$out" | kubeconform -strict -summary -
        fi
    done
    command -v kubeconform >/dev/null 2>&1 || skip "kubeconform not installed: no Kubernetes schema validation"
else
    skip "kubectl not installed: kustomizations not rendered"
fi

say "docker compose config"
if docker compose version >/dev/null 2>&1; then
    docker compose -f deploy/compose.yaml --env-file deploy/.env.example config -q
    echo "ok   docker compose config -q"
else
    skip "docker compose not available"
fi

say "Caddyfile"
if command -v caddy >/dev/null 2>&1; then
    PURSER_DOMAIN=localhost caddy validate --adapter caddyfile --config deploy/Caddyfile
else
    skip "caddy not installed: Caddyfile checked statically only"
fi

say "Dockerfile lint"
if command -v hadolint >/dev/null 2>&1; then
    hadolint deploy/Dockerfile
else
    skip "hadolint not installed"
fi

echo
echo "deploy checks passed"
