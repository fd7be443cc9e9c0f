"""Simulated `Resolve` and `ProjectManager`: the application, its databases and projects."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from bridge.sim import state as S
from bridge.sim.handles import put
from bridge.sim.library import new_id, new_project
from bridge.sim.mediapool import MediaStorage
from bridge.sim.project import Project

DRP_MARKER = "resolve-farm-sim-drp"
UNTITLED = "Untitled Project"
PAGES = ("media", "cut", "edit", "fusion", "color", "fairlight", "deliver")


class Resolve:
    """The simulated application, as `scriptapp("Resolve")` returns it."""

    def __init__(self, state: S.SimState) -> None:
        self._state = state
        self._page = "edit"

    def GetProductName(self) -> str:
        return self._state.config.product

    def GetVersion(self) -> list[Any]:
        return list(self._state.config.version)

    def GetVersionString(self) -> str:
        major, minor, patch, build, suffix = self._state.config.version
        return f"{major}.{minor}.{patch}.{build}" + (f" {suffix}" if suffix else "")

    # Note: a free edition from 21.1 on answers the identity calls above and refuses the
    # rest (scripting is a Studio feature there): every other object is reached from here.

    def GetProjectManager(self) -> ProjectManager | None:
        return None if self._state.config.scripting_refused else ProjectManager(self._state)

    def GetMediaStorage(self) -> MediaStorage | None:
        return None if self._state.config.scripting_refused else MediaStorage(self._state)

    def OpenPage(self, pageName: str) -> bool:
        if pageName not in PAGES or self._state.config.scripting_refused:
            return False
        self._page = pageName
        return True

    def GetCurrentPage(self) -> str | None:
        return None if self._state.config.scripting_refused else self._page


class ProjectManager:
    """Projects and project folders of the current database."""

    def __init__(self, state: S.SimState) -> None:
        self._state = state

    def _db(self) -> dict[str, Any]:
        return S.database(self._state.library.read(), self._state.database)

    def _in_folder(self, name: str) -> dict[str, Any] | None:
        return next(
            (p for p in self._db()["projects"].values() if p["name"] == name and p["folder"] == self._state.folder),
            None,
        )

    def _open(self, project_id: str) -> Project:
        if self._state.project_id not in (None, project_id):
            self._state.close_project(self._state.project_id)  # Resolve closes the project it leaves
        self._state.open_project(project_id)
        return Project(self._state, project_id)

    # --- databases -----------------------------------------------------------------------

    def GetCurrentDatabase(self) -> dict[str, str]:
        return self._db_info(self._state.database, self._db())

    def GetDatabaseList(self) -> list[dict[str, str]]:
        return [self._db_info(n, d) for n, d in self._state.library.read()["databases"].items()]

    @staticmethod
    def _db_info(name: str, db: dict[str, Any]) -> dict[str, str]:
        info = {"DbType": db["DbType"], "DbName": name}
        if db["DbType"] == "PostgreSQL":
            info["IpAddress"] = db.get("IpAddress", "127.0.0.1")
        return info

    def SetCurrentDatabase(self, dbInfo: dict[str, str]) -> bool:
        if not isinstance(dbInfo, dict):
            return False
        db = self._state.library.read()["databases"].get(dbInfo.get("DbName", ""))
        if db is None or db["DbType"] != dbInfo.get("DbType"):
            return False
        if db["DbType"] == "PostgreSQL" and dbInfo.get("IpAddress", "127.0.0.1") != db.get("IpAddress", "127.0.0.1"):
            return False
        if self._state.renderer.busy:
            return False
        if self._state.project_id is not None:
            self._state.close_project(self._state.project_id)
        self._state.database, self._state.folder, self._state.project_id = dbInfo["DbName"], "", None
        return True

    # --- folders -------------------------------------------------------------------------

    def GetCurrentFolder(self) -> str:
        return self._state.folder.rsplit("/", 1)[-1]

    def GetFolderListInCurrentFolder(self) -> list[str]:
        prefix = self._state.folder + "/" if self._state.folder else ""
        return sorted(
            f[len(prefix) :]
            for f in self._db()["folders"]
            if f.startswith(prefix) and f and "/" not in f[len(prefix) :]
        )

    def GetProjectListInCurrentFolder(self) -> list[str]:
        # Resolve's ever-present untitled project is not listed until it is saved under a name.
        return sorted(
            p["name"]
            for p in self._db()["projects"].values()
            if p["folder"] == self._state.folder and not (p["name"] == UNTITLED and not p.get("saved"))
        )

    def CreateFolder(self, folderName: str) -> bool:
        if not folderName or "/" in folderName:
            return False
        path = f"{self._state.folder}/{folderName}" if self._state.folder else folderName

        def create(data: dict[str, Any]) -> bool:
            folders = S.database(data, self._state.database)["folders"]
            if path in folders:
                return False
            folders.append(path)
            return True

        return self._state.library.update(create)

    def DeleteFolder(self, folderName: str) -> bool:
        path = f"{self._state.folder}/{folderName}" if self._state.folder else folderName

        def delete(data: dict[str, Any]) -> bool:
            db = S.database(data, self._state.database)
            if path not in db["folders"] or any(p["folder"].startswith(path) for p in db["projects"].values()):
                return False
            db["folders"] = [f for f in db["folders"] if f != path and not f.startswith(path + "/")]
            return True

        return bool(folderName) and self._state.library.update(delete)

    def OpenFolder(self, folderName: str) -> bool:
        path = f"{self._state.folder}/{folderName}" if self._state.folder else folderName
        if path not in self._db()["folders"]:
            return False
        self._state.folder = path
        return True

    def GotoRootFolder(self) -> bool:
        self._state.folder = ""
        return True

    def GotoParentFolder(self) -> bool:
        if not self._state.folder:
            return False
        self._state.folder = self._state.folder.rpartition("/")[0]
        return True

    # --- projects ------------------------------------------------------------------------

    def CreateProject(self, projectName: str, mediaLocationPath: str | None = None) -> Project | None:
        if not projectName or self._in_folder(projectName) is not None:
            return None
        proj = new_project(projectName, self._state.folder)
        self._state.library.update(
            lambda data: S.database(data, self._state.database)["projects"].__setitem__(proj["id"], proj)
        )
        return self._open(proj["id"])

    def LoadProject(self, projectName: str) -> Project | None:
        found = self._in_folder(projectName)
        if found is None or self._state.renderer.busy:
            return None
        return self._open(found["id"])

    def GetCurrentProject(self) -> Project:
        if self._state.project_id is not None:
            try:
                S.project(self._state.library.read(), self._state, self._state.project_id)
                return Project(self._state, self._state.project_id)
            except S.Gone:
                pass  # deleted by another host: Resolve falls back to an untitled project
        self._state.folder = ""
        existing = self._in_folder(UNTITLED)
        return self._open(existing["id"]) if existing else self._create_untitled()

    def _create_untitled(self) -> Project:
        proj = new_project(UNTITLED)
        self._state.library.update(
            lambda data: S.database(data, self._state.database)["projects"].__setitem__(proj["id"], proj)
        )
        return self._open(proj["id"])

    def SaveProject(self) -> bool:
        """Save the current project.

        Note: as in Resolve, saving a never-saved "Untitled Project" opens a modal name
        dialog and blocks the application; the bridge never does that.
        """
        project = self.GetCurrentProject()
        data = project._get()
        if data["name"] == UNTITLED and not data.get("saved"):
            _block_forever()
        if project.GetUniqueId() in self._state.read_only:
            return False  # opened read-only: another host holds it; only "Save As" would keep the changes
        return project._change(put("saved", value=True))

    def CloseProject(self, project: Project) -> bool:
        if not isinstance(project, Project) or self._state.renderer.busy:
            return False
        self._state.close_project(project.GetUniqueId())
        return True

    def DeleteProject(self, projectName: str) -> bool:
        found = self._in_folder(projectName)
        if found is None or found["id"] == self._state.project_id:
            return False  # Resolve refuses to delete the open project
        return self._state.library.update(
            lambda data: S.database(data, self._state.database)["projects"].pop(found["id"], None) is not None
        )

    def ExportProject(self, projectName: str, filePath: str, withStillsAndLUTs: bool = True) -> bool:
        found = self._in_folder(projectName)
        if found is None:
            return False
        try:
            Path(filePath).write_text(json.dumps({DRP_MARKER: 1, "project": found}), encoding="utf-8")
        except OSError:
            return False
        return True

    def ImportProject(self, filePath: str, projectName: str | None = None) -> bool:
        try:
            doc = json.loads(Path(filePath).read_text(encoding="utf-8"))
            proj = copy.deepcopy(doc["project"]) if doc.get(DRP_MARKER) == 1 else None
        except (OSError, ValueError, AttributeError, KeyError):
            return False
        if proj is None:
            return False
        proj["id"], proj["folder"] = new_id(), self._state.folder
        if projectName:
            proj["name"] = projectName
        if self._in_folder(proj["name"]) is not None:
            return False

        def add(data: dict[str, Any]) -> bool:
            S.database(data, self._state.database)["projects"][proj["id"]] = proj
            return True

        return self._state.library.update(add)


def _block_forever() -> None:
    import threading

    threading.Event().wait()
