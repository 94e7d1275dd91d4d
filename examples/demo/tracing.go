package main

import (
	"context"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// newTracerProvider returns the tracer provider the environment asks for,
// the name of its exporter, and a func that flushes and stops it:
//
//   - OTEL_TRACES_EXPORTER=console: spans are written to stdout as they end;
//   - OTEL_TRACES_EXPORTER=none: no spans;
//   - OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set,
//     or OTEL_TRACES_EXPORTER=otlp: spans go by OTLP over HTTP, configured by
//     the exporter's own OTEL_EXPORTER_OTLP_* variables;
//   - otherwise no spans.
//
// The service name is "sessionstore-demo" unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES says otherwise.
func newTracerProvider(ctx context.Context) (trace.TracerProvider, string, func(context.Context) error, error) {
	var (
		name string
		opt  sdktrace.TracerProviderOption
	)
	switch exporter := os.Getenv("OTEL_TRACES_EXPORTER"); {
	case exporter == "console":
		exp, err := stdouttrace.New(stdouttrace.WithPrettyPrint())
		if err != nil {
			return nil, "", nil, err
		}
		// Synchronous, so that each span shows as soon as it ends.
		name, opt = "console", sdktrace.WithSyncer(exp)
	case exporter == "none":
	case exporter == "otlp" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "":
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, "", nil, err
		}
		name, opt = "otlp", sdktrace.WithBatcher(exp)
	}
	if opt == nil {
		return noop.NewTracerProvider(), "none", func(context.Context) error { return nil }, nil
	}
	// Later options win: the environment overrides the default name.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "sessionstore-demo")),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, "", nil, err
	}
	tp := sdktrace.NewTracerProvider(opt, sdktrace.WithResource(res))
	return tp, name, tp.Shutdown, nil
}
