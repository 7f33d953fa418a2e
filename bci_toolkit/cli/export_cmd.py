"""``bci export``: a trained artifact as NIR (spiking decoder) or ONNX/TorchScript
(ConvNets)."""

from __future__ import annotations

from pathlib import Path

import typer

from bci_toolkit.cli._common import KEYSET_OPTION, resolve_policy

FORMATS = ("nir", "onnx", "torchscript")
_SUPPORTED = "supported formats: nir (snn), onnx or torchscript (ConvNets)"


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        artifact: Path = typer.Argument(..., help="Artifact folder written by `bci train`."),
        out: Path = typer.Argument(..., help="File to write."),
        fmt: str = typer.Option(..., "--format", help="nir (snn), onnx or torchscript (ConvNets)."),
        encrypt: bool = typer.Option(
            None, "--encrypt/--no-encrypt",
            help="Encrypt the exported file at rest (default: BCI_PRIVACY_ENCRYPT)."),
        keyset: str = KEYSET_OPTION,
    ) -> None:
        """Export a trained decoder for deployment (NIR for neuromorphic hardware)."""
        from bci_toolkit.errors import OptionError

        if fmt not in FORMATS:
            raise OptionError(f"--format: {fmt[:40]!r} is not one of {', '.join(FORMATS)}")
        if out.exists() and out.is_dir():
            raise OptionError(f"OUT: {out} is a folder; give a file name")
        if not out.parent.is_dir():
            raise OptionError(f"OUT: folder {out.parent} does not exist")
        policy = resolve_policy(encrypt, keyset)

        from bci_toolkit.decoders.artifact import load_artifact
        from bci_toolkit.errors import ArtifactError

        loaded = load_artifact(artifact, policy)  # untrusted: the checked loader
        if fmt == "nir":
            from bci_toolkit.decoders.spiking.nir_export import export_nir

            written = export_nir(loaded, out, policy)
        else:
            from bci_toolkit.decoders.deep import DeepEpochClassifier
            from bci_toolkit.decoders.deep.export import export as export_convnet

            if not isinstance(loaded.decoder, DeepEpochClassifier):
                raise ArtifactError(f"{artifact}: --format {fmt} exports ConvNets, this artifact "
                                    f"holds {type(loaded.decoder).__name__}; {_SUPPORTED}")
            written = export_convnet(loaded.decoder, out, fmt, policy)
        typer.echo(f"wrote {written} ({fmt})")
