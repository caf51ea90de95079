"""Actions the dashboard runs on one app (rollback, restart; backup now, drill): called on a worker thread only."""
from __future__ import annotations


def run_app_action(what: str, config_path: str, app_name: str) -> tuple[bool, str]:
    """(ok, message) of `homelab apps rollback|restart CONFIG APP`, for the TUI."""
    from homelab.config import load_config
    from homelab.engine import Engine
    from homelab.errors import HomelabError
    from homelab.layers.apps.cli import restart_app, rollback_app
    from homelab.layers.base import RunOptions

    try:
        config = load_config(config_path)
        apps = config.get("apps")
        app = apps.app(app_name) if apps is not None else None
        if app is None:
            return False, f"{app_name} is not an app of {config_path}"
        act = rollback_app if what == "rollback" else restart_app
        return act(Engine(config, RunOptions()), app)
    except HomelabError as exc:
        return False, f"{what} {app_name}: {exc.message}"


def run_storage_action(what: str, config_path: str, app_name: str, repository: str | None) -> tuple[bool, str]:
    """(ok, message) of `homelab backup CONFIG run|drill|list APP` (one repository), for the TUI."""
    from homelab.config import load_config
    from homelab.errors import HomelabError
    from homelab.layers.storage.cli import perform

    action = "run" if what == "backup" else what
    try:
        ok, out, err = perform(load_config(config_path), action, app_name, repository)
    except HomelabError as exc:
        return False, f"{what} {app_name}: {exc.message}"
    lines = out + err
    return ok, "\n".join(lines) if lines else f"{what} {app_name}: nothing to do (no backup of it is configured)"
