"""python -m dyag_evaluator: serve EvaluatorService over gRPC and run evaluation.run jobs."""

from __future__ import annotations

from dyag.v1 import evaluation_pb2_grpc
from dyag_evaluator.job import EVALUATE, EvaluationJob
from dyag_evaluator.runs import RunStore
from dyag_evaluator.service import EvaluatorServicer
from dyag_evaluator.settings import EvaluatorSettings
from dyag_runtime.peers import Peers
from dyag_runtime.server import Runtime, run


def main() -> None:
    settings = EvaluatorSettings()

    async def setup(rt: Runtime) -> None:
        runs = RunStore(settings.database("evaluator.sqlite"))
        peers = Peers(settings)
        rt.add_servicer(
            evaluation_pb2_grpc.add_EvaluatorServiceServicer_to_server,
            EvaluatorServicer(rt, runs, peers),
            "dyag.v1.EvaluatorService",
        )
        rt.handlers[EVALUATE] = EvaluationJob(rt, runs, peers).run
        rt.on_shutdown.append(peers.close)

    run(settings, setup)


if __name__ == "__main__":
    main()
