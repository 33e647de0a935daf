"""The image root: the Dockerfile's build-stage output steps and COPY --from replayed into a staging directory,
then its binary inspected (the bundles it names, the build path compiled into it, the libraries it links)."""
import glob
import os
import re
import shlex
import shutil
import subprocess

from .report import Failure

# Libraries every Debian image has (glibc, the C++ runtime the Swift runtime links, libgcc_s).
BASE_LIBRARIES = re.compile(r"^(libc|libm|libdl|libpthread|librt|libutil|ld-linux[-\w]*|libstdc\+\+|libgcc_s)\.so")


def path_token(directory):
    """A regex for DIRECTORY used as a path in a shell command (not as a part of a longer path)."""
    return re.compile(r"(?<![\w./-])" + re.escape(directory) + r"(?=[/\s\"';&|)]|$)")


SWIFT_STAND_IN = r'''
swift() {
    case " $* " in
        *" -c release "*) ;;
        *) echo "check-deploy: the Dockerfile runs swift without -c release: swift $*" >&2; return 1 ;;
    esac
    case " $* " in
        *" --show-bin-path "*) printf '%s\n' "$CHECK_DEPLOY_BIN_DIR" ;;
        " build "*) echo "check-deploy: skipped (the prebuilt bin dir stands in for it): swift $*" >&2 ;;
        *) echo "check-deploy: unexpected swift command: swift $*" >&2; return 1 ;;
    esac
}
'''


def docker_copy(source, destination):
    """Docker's COPY for one source path: a directory's contents go into the destination, a file goes into it when
    the destination ends with / (else becomes it)."""
    if os.path.isdir(source):
        shutil.copytree(source, destination, symlinks=True, dirs_exist_ok=True)
    else:
        target = os.path.join(destination, os.path.basename(source)) if destination.endswith("/") else destination
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)


def stage_image(report, build, copies_from, bin_dir, work):
    """Replays the build stage's output steps and the runtime stage's COPY --from; returns the staged root."""
    build_fs = os.path.join(work, "build-stage")
    staged_root = os.path.join(work, "image-root")
    os.makedirs(build_fs)
    os.makedirs(staged_root)
    output_dirs = set()
    for _, sources, _ in copies_from:
        for source in sources:
            if not source.startswith("/"):
                raise Failure(f"Dockerfile: COPY --from source {source} must be absolute")
            output_dirs.add("/" + source.strip("/").split("/")[0])
    replayed = 0
    for instruction, arguments in build["steps"]:
        if instruction != "RUN" or not any(path_token(directory).search(arguments) for directory in output_dirs):
            continue
        if arguments.startswith("["):
            raise Failure("Dockerfile: a RUN writing the output directory must use the shell form")
        command = arguments
        for directory in output_dirs:
            command = path_token(directory).sub(shlex.quote(build_fs + directory).replace("\\", "\\\\"), command)
        environment = dict(os.environ, CHECK_DEPLOY_BIN_DIR=os.path.abspath(bin_dir))
        result = subprocess.run(["/bin/sh", "-c", "set -e\n" + SWIFT_STAND_IN + command], cwd=work,
                                check=False, env=environment, capture_output=True, text=True, timeout=300)
        for line in result.stderr.splitlines():
            print(f"     {line}")
        if result.returncode != 0:
            raise Failure(f"Dockerfile: replaying the build stage's RUN failed (status {result.returncode}): "
                          f"{result.stderr.strip()[-400:]}")
        replayed += 1
    if not replayed:
        raise Failure(f"Dockerfile: no build-stage RUN writes {sorted(output_dirs)}, the runtime stage's source")
    for flags, sources, destination in copies_from:
        for source in sources:
            matches = glob.glob(build_fs + source.rstrip("/")) if source.rstrip("/") else [build_fs]
            if not matches:
                raise Failure(f"Dockerfile: COPY --from={flags['from']} {source}: not produced by the build stage's "
                              "output steps")
            for match in matches:
                docker_copy(match, staged_root + destination)
    report.ok(f"Dockerfile: replayed {replayed} build-stage RUN step(s) and {len(copies_from)} COPY --from; the image "
              f"root holds {sorted(os.path.relpath(p, staged_root) for p in glob.glob(staged_root + '/*/*/*/*'))}")
    return staged_root


def bundle_references(binary):
    """(fallback directories, bundle names) compiled into a SwiftPM binary's resource accessors."""
    with open(binary, "rb") as handle:
        data = handle.read()
    names = set(re.findall(rb"\x00([A-Za-z0-9_.-]+\.resources)(?=\x00)", data))
    fallbacks = set()
    for directory, name in re.findall(rb"\x00(/[\x21-\x7e]+?)/([A-Za-z0-9_.-]+\.resources)(?=\x00)", data):
        fallbacks.add(directory)
        names.add(name)
    return fallbacks, {name.decode() for name in names}


def hide_build_path(binary, fallbacks):
    """Overwrites each compiled-in fallback directory in BINARY with a path of the same length that does not exist."""
    with open(binary, "rb") as handle:
        data = handle.read()
    for directory in fallbacks:
        replacement = (b"/nonexistent-rondo-build-" + b"x" * len(directory))[:len(directory)]
        if os.path.exists(replacement):
            raise Failure(f"{replacement.decode()} exists; cannot hide the build path")
        data = data.replace(directory + b"/", replacement + b"/")
    with open(binary, "wb") as handle:
        handle.write(data)
    with open(binary, "rb") as handle:
        return not any(directory + b"/" in handle.read() for directory in fallbacks)


def check_libraries(report, binary, apt_packages):
    """Each shared library the binary needs beyond the Swift runtime, glibc, libstdc++ and libgcc_s must come from a
    package the runtime stage installs."""
    if not shutil.which("readelf") or not shutil.which("dpkg"):
        report.skip("shared libraries: readelf or dpkg missing, cannot map libraries to Debian packages")
        return
    dynamic = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    runpath = [directory for found in re.findall(r"\((?:RUNPATH|RPATH)\)\s+Library r\w*path: \[([^\]]+)\]", dynamic)
               for directory in found.split(":") if directory.startswith("/")]
    swift_runtime = [name for name in needed if any(os.path.exists(os.path.join(d, name)) for d in runpath)]
    others = [name for name in needed if name not in swift_runtime and not BASE_LIBRARIES.match(name)]
    cache = subprocess.run(["ldconfig", "-p"], check=False, capture_output=True, text=True).stdout
    for name in others:
        located = re.findall(r"^\s*" + re.escape(name) + r" \(([^)]*)\) => (\S+)", cache, re.MULTILINE)
        paths = [path for flags, path in located if "x86-64" in flags or "64bit" in flags or "AArch64" in flags]
        package = None
        for path in paths[:1] + [os.path.realpath(p) for p in paths[:1]]:
            for candidate in (path, "/usr" + path if not path.startswith("/usr/") else path[4:]):
                owner = subprocess.run(["dpkg", "-S", candidate], check=False, capture_output=True, text=True)
                if owner.returncode == 0:
                    package = owner.stdout.split(":")[0].strip()
                    break
            if package:
                break
        if package is None:
            report.check(False, f"shared libraries: cannot find the Debian package of {name}")
            continue
        package = re.sub(r"t64$", "", package)  # Debian's 64-bit time_t renames (libcurl4t64) are the same library
        report.check(package in apt_packages, f"shared libraries: {name} comes from {package}, which the runtime "
                     f"stage does not install (it installs {sorted(apt_packages)})")
    report.ok(f"shared libraries: {', '.join(others)} come from runtime-stage packages; "
              f"{len(swift_runtime)} Swift runtime libraries are linked statically in the image")
