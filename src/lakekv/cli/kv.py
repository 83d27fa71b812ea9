"""Key-value commands: drivers, get, set, delete, scan, partitions."""

from __future__ import annotations

import click

from lakekv.cli._common import (
    decode_arg,
    encode_out,
    encoding_option,
    json_option,
    print_json,
    print_json_line,
    store_option,
)
from lakekv.kv.registry import available_drivers, open_store
from lakekv.kv.store import MUST_EXIST


@click.command()
@json_option
def drivers(as_json: bool) -> int:
    """List the store drivers: scheme, whether usable here, and how to install it.

    \b
    Examples:
      lakekv drivers
      lakekv drivers --json
    """
    infos = available_drivers()
    if as_json:
        print_json(infos)
        return 0
    for info in infos:
        state = "installed" if info.installed else "not installed"
        hint = "" if info.installed else f"  ({info.install_hint})"
        note = f"; {info.note}" if info.note else ""
        click.echo(f"{info.scheme + '://':<17} {state:<14} {info.origin}{hint}{note}")
    return 0


@click.command()
@store_option
@encoding_option
@json_option
@click.option(
    "--decode", is_flag=True, help="Print the value decoded as its lakeFS record type (JSON)."
)
@click.argument("partition")
@click.argument("key")
def get(
    store_url: str, encoding: str, as_json: bool, decode: bool, partition: str, key: str
) -> int:
    """Print the value of KEY in PARTITION (exit 1 if missing).

    \b
    Examples:
      lakekv get graveler repos/my-repo --encoding base64
      lakekv get graveler repos/my-repo --decode
      lakekv get -e hex 6b762d696e7465726e616c2d6d65746164617461 6b762f736368656d612f76657273696f6e
    """
    p = decode_arg(partition, encoding, "partition")
    k = decode_arg(key, encoding, "key")
    with open_store(store_url) as store:
        value = store.get(p, k).value
    if decode:
        from lakekv.record.registry import decode_entry  # noqa: PLC0415 (protobuf: on use)

        print_json(decode_entry(p, k, value))
        return 0
    if as_json:
        print_json(
            {
                "partition": encode_out(p, encoding),
                "key": encode_out(k, encoding),
                "value": encode_out(value, encoding),
                "encoding": encoding,
            }
        )
    else:
        click.echo(encode_out(value, encoding))
    return 0


@click.command(name="set")
@store_option
@encoding_option
@click.option(
    "--if-absent", "if_absent", is_flag=True, help="Only create; exit 4 if the key exists."
)
@click.option("--if-present", "if_present", is_flag=True, help="Only replace; exit 4 if missing.")
@click.argument("partition")
@click.argument("key")
@click.argument("value")
def set_(
    store_url: str,
    encoding: str,
    if_absent: bool,
    if_present: bool,
    partition: str,
    key: str,
    value: str,
) -> int:
    """Store VALUE under KEY in PARTITION.

    \b
    Examples:
      lakekv set my-partition greeting hello
      lakekv set --if-absent my-partition lock me
      lakekv set -e hex 7061 00ff 0102
    """
    if if_absent and if_present:
        raise click.UsageError("--if-absent and --if-present exclude each other")
    p = decode_arg(partition, encoding, "partition")
    k = decode_arg(key, encoding, "key")
    v = decode_arg(value, encoding, "value")
    with open_store(store_url) as store:
        if if_absent:
            store.set_if(p, k, v, None)
        elif if_present:
            store.set_if(p, k, v, MUST_EXIST)
        else:
            store.set(p, k, v)
    return 0


@click.command()
@store_option
@encoding_option
@click.argument("partition")
@click.argument("key")
def delete(store_url: str, encoding: str, partition: str, key: str) -> int:
    """Delete KEY from PARTITION (succeeds if it is already gone).

    \b
    Example:
      lakekv delete my-partition greeting
    """
    p = decode_arg(partition, encoding, "partition")
    k = decode_arg(key, encoding, "key")
    with open_store(store_url) as store:
        store.delete(p, k)
    return 0


@click.command()
@store_option
@encoding_option
@json_option
@click.option(
    "--decode", is_flag=True, help="Print the value decoded as its lakeFS record type (JSON)."
)
@click.option("--start", default=None, help="First key to show (inclusive).")
@click.option("--prefix", default=None, help="Only keys starting with this.")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="At most N entries.")
@click.option("--keys-only", is_flag=True, help="Print keys only.")
@click.argument("partition")
def scan(
    store_url: str,
    encoding: str,
    as_json: bool,
    start: str | None,
    prefix: str | None,
    limit: int | None,
    keys_only: bool,
    decode: bool,
    partition: str,
) -> int:
    """List the entries of PARTITION in key order (one per line; --json: JSON lines).

    \b
    Examples:
      lakekv scan graveler --prefix repos/
      lakekv scan graveler --prefix repos/ --decode
      lakekv scan my-partition --start k100 --limit 10 --json
    """
    p = decode_arg(partition, encoding, "partition")
    pre = decode_arg(prefix, encoding, "prefix") if prefix else b""
    begin = decode_arg(start, encoding, "start") if start else b""
    begin = max(begin, pre)
    if decode:
        from lakekv.record.registry import decode_entry  # noqa: PLC0415 (protobuf: on use)
    shown = 0
    with open_store(store_url) as store, store.scan(p, start=begin) as entries:
        for entry in entries:
            if limit is not None and shown >= limit:
                break
            if not entry.key.startswith(pre):
                break
            key = encode_out(entry.key, encoding)
            if decode:
                print_json_line(decode_entry(entry.partition, entry.key, entry.value))
            elif as_json:
                row = {"key": key}
                if not keys_only:
                    row["value"] = encode_out(entry.value, encoding)
                print_json_line(row)
            elif keys_only:
                click.echo(key)
            else:
                click.echo(f"{key}\t{encode_out(entry.value, encoding)}")
            shown += 1
    return 0


@click.command()
@store_option
@encoding_option
@json_option
def partitions(store_url: str, encoding: str, as_json: bool) -> int:
    """List every partition of the store in bytewise order (drivers that can list them).

    \b
    Example:
      lakekv --store postgres://postgres@127.0.0.1/lakefs partitions
    """
    with open_store(store_url) as store:
        names = [encode_out(p, encoding) for p in store.list_partitions()]
    if as_json:
        print_json(names)
    else:
        for name in names:
            click.echo(name)
    return 0


COMMANDS = [drivers, get, set_, delete, scan, partitions]
