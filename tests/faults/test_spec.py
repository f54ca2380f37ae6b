"""The fault SPEC grammar and plan checks (no simulation)."""

import pytest

from ocfsim import cli
from ocfsim.faults import KINDS, FaultError, check_cards, parse_fault


@pytest.mark.parametrize("text, kind, at, dur, card, params", [
    ("reset@60us", "reset", 60_000_000, 0, 0, ()),
    ("bme-off@60us+60us", "bme-off", 60_000_000, 60_000_000, 0, ()),
    ("mse-off@1.5ms+250ns", "mse-off", 1_500_000_000, 250_000, 0, ()),
    ("poke@80us:bar=1,reg=0x44,value=0", "poke", 80_000_000, 0, 0,
     (("bar", 1), ("reg", 0x44), ("value", 0))),
    ("lost-irq@5us:count=2,card=1", "lost-irq", 5_000_000, 0, 1, (("count", 2),)),
    ("garbage@10us:kind=mcr,seed=7", "garbage", 10_000_000, 0, 0,
     (("kind", "mcr"), ("seed", 7))),
])
def test_parse(text, kind, at, dur, card, params):
    f = parse_fault(text)
    assert (f.kind, f.at_ps, f.duration_ps, f.card, f.params) == (kind, at, dur, card, params)
    assert parse_fault(str(f)) == f                  # the printed form parses back


@pytest.mark.parametrize("text, says", [
    ("", "is not KIND@TIME"),
    ("reset", "is not KIND@TIME"),
    ("reset@60", "is not KIND@TIME"),
    ("reset@60s", "is not KIND@TIME"),
    ("reset@-5us", "is not KIND@TIME"),
    ("explode@60us", "unknown fault kind 'explode'"),
    ("bme-off@60us", "needs a duration"),
    ("reset@60us+5us", "is instantaneous"),
    ("poke@1us:bar=0,reg=0x4", "needs value="),
    ("poke@1us:bar=0,reg=0x6,value=1", "not dword aligned"),
    ("poke@1us:bar=9,reg=0x4,value=1", "bar=9 is not in 0..5"),
    ("poke@1us:reg=4,value=0x1ffffffff", "is not in 0..4294967295"),
    ("reset@1us:colour=red", "takes no 'colour'"),
    ("reset@1us:card", "is not KEY=VALUE"),
    ("lost-irq@1us:count=x", "count='x' is not an integer"),
    ("dram-latency@1us+1us:latency=16", "latency=16 is not in 0..15"),
    ("target-abort@1us", "needs a duration"),
    ("target-abort@1us+1us:every=0", "every=0 is not in 1..255"),
    ("garbage@1us", "needs kind="),
])
def test_bad_spec(text, says):
    with pytest.raises(FaultError, match=says):
        parse_fault(text)


def test_card_checks():
    check_cards([parse_fault("rings-off@1us")], ["hifn7751"])
    with pytest.raises(FaultError, match="applies to hifn7751 only"):
        check_cards([parse_fault("rings-off@1us")], ["bcm5820"])
    with pytest.raises(FaultError, match="applies to bcm5820 only"):
        check_cards([parse_fault("zero-particle@1us")], ["hifn7751"])
    with pytest.raises(FaultError, match="card=1 but the machine has 1 card"):
        check_cards([parse_fault("reset@1us:card=1")], ["bcm5820"])
    with pytest.raises(FaultError, match=r"a bcm5820 has no BAR1 \(BARs 0..0\)"):
        check_cards([parse_fault("poke@1us:bar=1,reg=0,value=0")], ["bcm5820"])
    with pytest.raises(FaultError, match=r"a hifn7751 has no BAR2 \(BARs 0..1\)"):
        check_cards([parse_fault("poke@1us:bar=2,reg=0,value=0")], ["hifn7751"])
    with pytest.raises(FaultError, match="hands over ctx, particle, mcr"):
        check_cards([parse_fault("garbage@1us:kind=hifn-res")], ["bcm5820"])


def test_every_kind_has_an_injector():
    from ocfsim.faults import INJECTORS
    assert set(INJECTORS) == set(KINDS)


@pytest.mark.parametrize("argv, says", [
    (["--fault", "explode@1us"], "unknown fault kind"),
    (["--fault", "bme-off@1us"], "needs a duration"),
    (["--card", "bcm5820", "--fault", "rings-off@1us"], "applies to hifn7751 only"),
    (["--card", "soft", "--fault", "reset@1us"], "has 0 card(s)"),
])
def test_cli_refuses_bad_fault(argv, says, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1
