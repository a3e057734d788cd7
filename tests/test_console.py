"""fter_tvm.console: fd-2 and Python-warning capture, summaries, progress only on a terminal."""

from __future__ import annotations

import os
import warnings

import pytest

from fter_tvm import console

TVM_LINE = b"[01:02:03] /project/include/tvm/topi/transform.h:1261: Warning: Fast mode segfaults\n"


def test_capture_takes_fd2_lines_and_python_warnings(capfd):
    with console.capture_warnings() as got:
        os.write(2, TVM_LINE)             # what TVM's C++ logger does
        os.write(2, TVM_LINE.replace(b"02:03", b"02:04"))
        warnings.warn("tracer says hi", UserWarning)
    assert capfd.readouterr() == ("", "")
    tvm_msg = "/project/include/tvm/topi/transform.h:1261: Warning: Fast mode segfaults"
    assert got[:2] == [tvm_msg, tvm_msg] and got[2].startswith("UserWarning: tracer says hi (")
    s = console.summarize(got)
    assert s["count"] == 3 and [m["count"] for m in s["messages"]] == [2, 1]
    assert console.format_summary(got) == "3 warnings captured (2 distinct; --verbose lists them)\n"
    assert console.format_summary(got, verbose=True).splitlines()[1] == f"     2 x {tvm_msg}"
    assert console.format_summary([]) == ""
    os.write(2, b"after\n")               # fd 2 is back
    assert capfd.readouterr().err == "after\n"


def test_inner_captures_count_for_the_outer_one():
    with console.capture_warnings() as outer:
        os.write(2, b"first\n")
        with console.capture_warnings() as inner:
            os.write(2, b"second\n")
    assert inner == ["second"] and sorted(outer) == ["first", "second"]


def test_an_error_carries_the_captured_messages(capfd):
    with pytest.raises(RuntimeError) as e:
        with console.capture_warnings():
            os.write(2, b"the reason\n")
            raise RuntimeError("boom")
    assert "1 x the reason" in "\n".join(e.value.__notes__)
    assert capfd.readouterr().err == ""


def test_no_progress_without_a_terminal(capfd):
    assert console.enable_progress(True) is False     # pytest's fd 2 is a file
    with console.step("long step"):
        pass
    assert list(console.progress_iter([1, 2], "items")) == [1, 2]
    assert capfd.readouterr() == ("", "")


def test_a_second_thread_does_not_redirect_fd2_again(capfd):
    import threading

    seen = []

    def other():
        with console.capture_warnings() as got:
            os.write(2, b"from the thread\n")
        seen.append(got)

    with console.capture_warnings() as outer:
        t = threading.Thread(target=other)
        t.start()
        t.join()
    os.write(2, b"after\n")
    assert seen == [[]] and outer == ["from the thread"] and capfd.readouterr().err == "after\n"
