"""The console script as an operator runs it: demo, serve, db upgrade."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from backend.settings import DEV_ADMIN_TOKEN
from tests.helpers.processes import CHARGEBOT, clean_env, free_port, interrupt, wait_for_health
from tests.helpers.waiting import eventually_blocking

CITIES = {"Stockholm", "Göteborg", "Malmö", "Uppsala"}


def test_the_demo_serves_a_seeded_swedish_network(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [CHARGEBOT, "demo", "--no-chat", "--port", str(port)],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_health(base, process)
        headers = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
        stations = httpx.get(f"{base}/admin/stations", headers=headers).json()
        chargers = httpx.get(f"{base}/admin/chargers", headers=headers).json()
        assert httpx.get(f"{base}/docs").status_code == 200
    finally:
        out, err = interrupt(process)
    assert len(stations) >= 12
    assert {s["city"] for s in stations} >= CITIES
    assert len({s["city"] for s in stations}) >= 8
    assert all(s["tariff"] and s["tariff"]["price_per_kwh_minor"] > 0 for s in stations)
    connectors = [c for charger in chargers for c in charger["connectors"]]
    assert {c["connector_type"] for c in connectors} == {"type2", "ccs", "chademo"}
    assert f"{base}/docs" in out
    assert all(c["code"] in out for c in connectors)
    assert (tmp_path / "var" / "demo.sqlite3").exists()
    assert "Traceback" not in err


def test_serve_refuses_to_start_without_an_admin_token(tmp_path: Path) -> None:
    result = subprocess.run(
        [CHARGEBOT, "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env=clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "ADMIN_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_upgrades_its_sqlite_database_and_answers(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    token = "serve-test-token-0123456789abcdef"
    process = subprocess.Popen(
        [CHARGEBOT, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=clean_env(
            ADMIN_TOKEN=token,
            SECRET_KEY="serve-test-secret-key-0123456789",
            DATABASE_URL=f"sqlite:///{tmp_path / 'srv.sqlite3'}",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_health(base, process)
        response = httpx.get(f"{base}/admin/stations", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert response.json() == []
    finally:
        interrupt(process)


def test_db_upgrade_migrates_the_database_in_database_url(tmp_path: Path) -> None:
    target = tmp_path / "db" / "prod.sqlite3"
    result = subprocess.run(
        [CHARGEBOT, "db", "upgrade"],
        cwd=tmp_path,
        env=clean_env(DATABASE_URL=f"sqlite:///{target}", ENVIRONMENT="development"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "database at revision head" in result.stdout
    assert target.exists()


def _demo_chat(tmp_path: Path, lines: list[str], *extra: str) -> str:
    result = subprocess.run(
        [CHARGEBOT, "demo", "--port", str(free_port()), *extra],
        cwd=tmp_path,
        env=clean_env(),
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_the_demo_chat_answers_piped_lines_and_exits(tmp_path: Path) -> None:
    out = _demo_chat(tmp_path, ["/help", "/find Uppsala", "/prices", "/language"])
    assert "du> /help" in out
    assert "bot> Det här kan jag:" in out
    assert "nära Uppsala" in out
    assert "25 % moms" in out
    assert "bot>   2) English" in out


def test_a_connector_code_piped_at_once_finds_the_connector_free(tmp_path: Path) -> None:
    """The chat starts once the simulated chargers have reported their connectors: a code
    typed (or piped) at once is not answered "out of order"."""
    out = _demo_chat(tmp_path, ["STTHT"])
    assert "Uttag STTHT" in out
    assert "ur drift" not in out
    assert "Starta laddningen" in out


def test_the_demo_chat_speaks_english_with_lang_en(tmp_path: Path) -> None:
    out = _demo_chat(tmp_path, ["/help", "/find Göteborg central"], "--lang", "en")
    assert "bot> Here's what I can do:" in out
    assert "Göteborg Centralstation" in out


def test_ctrl_c_stops_the_demos_simulated_chargers_without_connection_lost_warnings(
    tmp_path: Path,
) -> None:
    """Incident: Ctrl-C in `make demo` printed ~26 "connection lost" warnings, one per charger."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [CHARGEBOT, "demo", "--no-chat", "--port", str(port)],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_health(base, process)
        headers = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
        chargers = eventually_blocking(
            lambda: httpx.get(f"{base}/admin/chargers", headers=headers).json(),
            lambda chargers: chargers and all(c["online"] for c in chargers),
            within=60,
        )
        assert chargers and all(c["online"] for c in chargers)
    finally:
        out, err = interrupt(process)
    assert process.returncode == 0
    assert "chargebot demo stopped." in out
    assert "connection lost" not in err
    assert " WARNING " not in err and "Traceback" not in err
