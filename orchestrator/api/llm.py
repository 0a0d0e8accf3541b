"""`POST /v1/llm/assess`: an agent asks the LLM gateway; the answer may be an abstention."""

from __future__ import annotations

from fastapi import APIRouter, Request

from orchestrator.api.errors import fleet_of
from orchestrator.api.gateway import AgentDep
from orchestrator.llm import AssessRequest

router = APIRouter(prefix="/v1/llm", tags=["gateway"])


@router.post("/assess")
async def assess(request: Request, agent: AgentDep, body: AssessRequest) -> dict:
    """A structured assessment of the symbols, charged to this agent, or an abstention."""
    profile = {"name": agent.name, "strategy": agent.strategy}
    return await fleet_of(request).llm.assess(agent.id, profile, body)
