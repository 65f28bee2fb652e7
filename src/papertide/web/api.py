"""JSON API under /api/."""

from fastapi import APIRouter

router = APIRouter()
