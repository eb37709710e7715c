import signal

from runner.failures import classify
from store.trials import TrialState


def test_clean_exit_is_completed_and_feasible():
    o = classify(0)
    assert (o.state, o.reason, o.feasible) == (TrialState.COMPLETED, None, 1)


def test_nonzero_exit_keeps_the_stderr_tail():
    o = classify(3, stderr_tail="Traceback ...\n  File x\nValueError: bad batch shape\n")
    assert o.state is TrialState.FAILED and o.reason == "exit"
    assert "exit code 3" in o.detail and "ValueError: bad batch shape" in o.detail


def test_cuda_and_host_oom_are_infeasible():
    cuda = classify(1, stderr_tail="torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB")
    host = classify(1, stderr_tail="MemoryError")
    killed = classify(-signal.SIGKILL, host_oom_kill=True)
    assert [o.reason for o in (cuda, host, killed)] == ["oom", "oom", "oom"]
    assert "CUDA" in cuda.detail and "host" in host.detail and "OOM killer" in killed.detail
    assert all(o.feasible == 0 for o in (cuda, host, killed))


def test_divergence_wins_over_exit_status():
    o = classify(0, diverged=True)
    assert (o.state, o.reason, o.feasible) == (TrialState.FAILED, "diverged", 0)
    assert classify(-signal.SIGTERM, stop_reason="diverged", diverged=True).reason == "diverged"


def test_signal_timeout_and_user_stop():
    assert classify(-signal.SIGSEGV).detail == "killed by SIGSEGV"
    assert classify(-signal.SIGKILL).reason == "signal"
    t = classify(-signal.SIGTERM, stop_reason="timeout", timeout_s=5)
    assert (t.reason, t.feasible) == ("timeout", None) and "5 s" in t.detail
    s = classify(-signal.SIGTERM, stop_reason="user")
    assert (s.state, s.feasible) == (TrialState.STOPPED, None)


def test_a_clean_exit_without_the_objective_is_its_own_failure_not_a_feasible_result():
    o = classify(0, missing_objective="val_loss", reported=("train_loss", "lr"))
    assert (o.state, o.reason, o.feasible) == (TrialState.FAILED, "no_objective", None)
    assert o.detail == "exited 0 without reporting val_loss; it reported: lr, train_loss"
    assert classify(0, missing_objective="val_loss").detail.endswith("it reported: no metric at all")
    # a crash, a stop or a divergence says more than the missing objective
    assert classify(3, missing_objective="val_loss", stderr_tail="boom").reason == "exit"
    assert classify(0, stop_reason="user", missing_objective="val_loss").state is TrialState.STOPPED
