"""/admin/stations and their tariffs."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from backend.api.deps import IdPath, SessionDep
from backend.api.schemas import StationCreate, StationPublic, StationUpdate, TariffIn, TariffPublic
from backend.models import Station, Tariff
from backend.services import network

router = APIRouter(prefix="/stations", tags=["stations"])


def station_public(station: Station, tariff: Tariff | None) -> StationPublic:
    return StationPublic(
        **station.model_dump(exclude={"id"}),
        id=station.id,
        tariff=TariffPublic(**tariff.model_dump()) if tariff else None,
    )


async def _public(db: SessionDep, station: Station) -> StationPublic:
    tariffs = await network.tariffs_by_station(db, [station.id])  # type: ignore[list-item]
    return station_public(station, tariffs.get(station.id))  # type: ignore[arg-type]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_station(body: StationCreate, db: SessionDep) -> StationPublic:
    station = await network.create_station(db, **body.model_dump())
    return station_public(station, None)


@router.get("")
async def list_stations(db: SessionDep) -> list[StationPublic]:
    stations = await network.list_stations(db)
    tariffs = await network.tariffs_by_station(db, [s.id for s in stations])  # type: ignore[misc]
    return [station_public(s, tariffs.get(s.id)) for s in stations]  # type: ignore[arg-type]


@router.get("/{station_id}")
async def get_station(station_id: IdPath, db: SessionDep) -> StationPublic:
    return await _public(db, await network.get_station(db, station_id))


@router.patch("/{station_id}")
async def update_station(station_id: IdPath, body: StationUpdate, db: SessionDep) -> StationPublic:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return await _public(db, await network.update_station(db, station_id, changes))


@router.delete("/{station_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_station(station_id: IdPath, db: SessionDep) -> Response:
    await network.delete_station(db, station_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{station_id}/tariff")
async def put_tariff(station_id: IdPath, body: TariffIn, db: SessionDep) -> TariffPublic:
    tariff = await network.put_tariff(db, station_id, body.model_dump())
    return TariffPublic(**tariff.model_dump())


@router.get("/{station_id}/tariff")
async def get_tariff(station_id: IdPath, db: SessionDep) -> TariffPublic:
    station = await _public(db, await network.get_station(db, station_id))
    if station.tariff is None:
        from backend.services.errors import NotFoundError

        raise NotFoundError(f"station {station_id} has no tariff yet")
    return station.tariff
