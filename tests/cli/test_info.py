"""``trustyard info``: the registry at a glance from its data directory, for a person and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from trustyard.auth.certificates import ensure_certificates
from trustyard.cli.ca import ca_fingerprint
from trustyard.cli.main import main


def test_json_names_urls_storage_database_and_counts(data: Path) -> None:
    result = CliRunner().invoke(main, ["info", "--data-dir", str(data), "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)

    assert found["urls"]["listen"] == "0.0.0.0:5000"
    assert found["urls"]["registry"].endswith(":5000/v2/")
    assert found["urls"]["registry"].startswith("https://")
    assert found["storage"]["driver"] == "filesystem"
    assert found["storage"]["parameters"]["rootdirectory"] == str((data / "storage").resolve())
    assert found["database"]["dialect"] == "sqlite"
    assert found["database"]["revision"]
    assert found["counts"] == {"repositories": 0, "tags": 0, "manifests": 0, "blobs": 0, "bytes": 0}
    assert [node["this"] for node in found["nodes"]] == [True]
    assert "no server has served lately" in found["nodes_note"]
    assert found["gc"] == {"running": False, "last_run": None}
    # serve has not run here: no certificate yet, and it says so
    assert found["tls"]["not_after"] is None


def test_for_a_person_it_shows_the_certificate_and_the_ca_fingerprint(data: Path) -> None:
    tls = ensure_certificates(data / "tls", ["registry.example"])

    result = CliRunner().invoke(main, ["info", "--data-dir", str(data)])

    assert result.exit_code == 0, result.output
    assert f"CA fingerprint:  {ca_fingerprint(tls.ca_cert)}" in result.output
    assert "registry.example" in result.output
    assert "(in 82" in result.output  # 825 days from now: "in 824 days" or "in 825 days"
    assert "Holds:           0 repositories, 0 tags, 0 manifests, 0 blobs, 0 bytes" in result.output
    assert "Last collection: none yet" in result.output


def test_plain_http_says_tls_is_off(data: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["info", "--data-dir", str(data)],
        env={"TRUSTYARD_INSECURE_HTTP": "true", "TRUSTYARD_PUBLIC_URL": "https://registry.example"},
    )
    assert result.exit_code == 0, result.output
    assert "TLS:             off (plain HTTP: TLS is terminated in front)" in result.output
    assert "Registry:        https://registry.example/v2/" in result.output


def test_a_missing_data_directory_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["info", "--data-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "no trustyard data" in result.output
