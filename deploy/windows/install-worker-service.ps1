# A Windows Resolve host's worker as a service, with NSSM (https://nssm.cc), which turns a
# console program into a service: restart on failure, Ctrl-C on stop (Celery's warm shutdown).
# Run in an elevated PowerShell on the host:
#   .\install-worker-service.ps1 -Name bay-3 -Broker "redis://:secret@farm-control.lan:6379/0" -Tags "studio,gpu,os-windows"
param(
    [Parameter(Mandatory = $true)][string]$Name,
    [Parameter(Mandatory = $true)][string]$Broker,
    [string]$Tags = "studio,os-windows",
    [string]$FarmExe = "C:\resolve-farm\.venv\Scripts\resolve-farm.exe",
    [string]$StorageRoots = "R:\renders",
    [string]$ResolveDir = "C:\Program Files\Blackmagic Design\DaVinci Resolve"
)
$ErrorActionPreference = "Stop"
if (-not (Get-Command nssm -ErrorAction SilentlyContinue)) {
    throw "nssm.exe is not on PATH: install NSSM first (it runs resolve-farm as a service)."
}
$service = "resolve-farm-worker"
# --pool auto is the threads pool on Windows: no fork, no POSIX signals (prefork is refused there).
nssm install $service $FarmExe worker --bridge auto --pool auto
nssm set $service AppEnvironmentExtra `
    "RESOLVE_FARM_BROKER_URL=$Broker" `
    "RESOLVE_FARM_NODE_NAME=$Name" `
    "RESOLVE_FARM_NODE_TAGS=$Tags" `
    "RESOLVE_FARM_STORAGE_ROOTS=$StorageRoots" `
    "RESOLVE_SCRIPT_LIB=$ResolveDir\fusionscript.dll"
# Stop with Ctrl-C (warm shutdown): a running render stops at its next progress report and its piece
# goes back to the queue for another host; an edit finishes first (its limit: 15 minutes).
nssm set $service AppStopMethodConsole 900000
nssm set $service AppStopMethodWindow 10000
nssm set $service AppStopMethodThreads 10000
nssm set $service AppExit Default Restart
nssm set $service AppRestartDelay 10000
nssm set $service Start SERVICE_AUTO_START
# Resolve's scripting is per user session: run the service as the user who runs Resolve.
Write-Host "Set the account: nssm set $service ObjectName .\<user> <password>; then: nssm start $service"
