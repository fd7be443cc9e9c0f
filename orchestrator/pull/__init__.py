"""Pulled renders: how a render's frames are handed to free nodes, sized by speed, and what that learns.

The render kind's scheduling, apart from the generic engine (DESIGN.md: "Scheduling is a
package, not branches"). The lifecycle calls its rules through the record
(`PulledRender`, `orchestrator.rules`); a piece's claim context is read from the farm before
the transaction (`dispatch.context`).

| module | holds |
|---|---|
| `pool` | `FramePool`: the frames no piece has taken yet, the job's run-time state |
| `rules` | `PulledRender`: frames taken at claim, successors, tail copies, the ETA, the index entry |
| `sizing` | how many frames a free node takes (`frames_to_take`), fair shares between jobs (`share_of`) |
| `finish` | when the farm is done with an amount of work (`finish_time`), for sizing and the ETA |
| `eta` | the ETA of a pulled render |
| `speeds` | `SpeedBook`: each node's speed per codec and size, remembered across jobs |
| `costs`, `fit` | `CostBook`: what each stretch of a timeline costs; costs and speeds fitted together |
| `dispatch` | the reads before a claim: speeds, costs, rival jobs, busy nodes; where the audio pass goes |
"""
