"""Starting the operator with another replica count stops the operators of the count before."""

from __future__ import annotations

from stretto.devcluster.stretto_stack import operator_names, stray_operators


def test_the_operators_of_another_replica_count_are_strays():
    components = ["etcd", "kube-apiserver", "extender", "operator", "emulator"]
    assert stray_operators(components, 2) == ["operator"]
    assert stray_operators([*components, *operator_names(2)], 1) == ["operator-0", "operator-1"]
    assert stray_operators(["operator", "extender"], 1) == []
    assert stray_operators(["operator-0", "operator-1", "operator-2"], 2) == ["operator-2"]
