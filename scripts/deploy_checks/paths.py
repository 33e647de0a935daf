"""Where the repository's deploy files and the Swift sources the checks read facts from are."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "Deploy")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")
DOCKERIGNORE = os.path.join(DEPLOY, "Dockerfile.dockerignore")
COMPOSE = os.path.join(DEPLOY, "compose.yaml")
KUBERNETES = os.path.join(DEPLOY, "kubernetes")
UNIT = os.path.join(DEPLOY, "systemd", "rondo.service")
SYSUSERS = os.path.join(DEPLOY, "systemd", "rondo.sysusers.conf")
OPENAPI = os.path.join(ROOT, "Sources", "Coordinator", "Resources", "openapi.yaml")
SERVE_SOURCE = os.path.join(ROOT, "Sources", "rondo", "ServeCommand.swift")
CONFIGURATION_SOURCE = os.path.join(ROOT, "Sources", "Coordinator", "CoordinatorConfiguration.swift")
VERSION_SOURCE = os.path.join(ROOT, "Sources", "FederationTelemetry", "RondoBuild.swift")
